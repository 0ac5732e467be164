package dynamo

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// Item layout. Every item has PK and SK; attribute names are short and are
// always reached through expression attribute names.
//
//	secret by ID     PK=P#<project>            SK=S#<id>           the secret record
//	secret by name   PK=P#<project>            SK=N#<name>         a full copy of the record
//	version          PK=P#<project>#S#<id>     SK=V#<0000000007>   metadata and ciphertext
//	resolution       PK=P#<project>#S#<id>     SK=R#<id>           audit record
//	API key          PK=K#<hash>               SK=K                the key record
//	API key listing  PK=P#<project>            SK=K#<id>           a copy, with last use
//	idempotency      PK=P#<project>            SK=I#<key>          expires_at for TTL
//	delete pending   PK=P#<project>            SK=T#<id>           versions still to purge
const (
	aID          = "id"
	aProject     = "project"
	aName        = "name"
	aDescription = "description"
	aCurrent     = "cur"
	aLatest      = "latest"
	aCreatedAt   = "created_at"
	aUpdatedAt   = "updated_at"
	aRevision    = "rev"

	aNumber     = "n"
	aState      = "st"
	aSHA256     = "sha256"
	aKeys       = "keys"
	aChangedAt  = "changed_at"
	aCiphertext = "ct"

	aScopes   = "scopes"
	aHash     = "hash"
	aLastUsed = "last_used_at"

	aRequestHash = "req_hash"
	aDone        = "done"
	aStatus      = "status"
	aHeader      = "hdr"
	aBody        = "body"
	aExpiresMS   = "exp_ms"

	aSecretID   = "secret_id"
	aSecretName = "secret_name"
	aRun        = "run"
	aResolvedAt = "resolved_at"
)

func projectPK(project string) string    { return "P#" + project }
func secretPK(project, id string) string { return "P#" + project + "#S#" + id }
func idSK(id string) string              { return "S#" + id }
func nameSK(name string) string          { return "N#" + name }
func versionSK(n int) string             { return fmt.Sprintf("V#%010d", n) }
func resolutionSK(id string) string      { return "R#" + id }
func keyPK(hash string) string           { return "K#" + hash }
func keyListSK(id string) string         { return "K#" + id }
func idemSK(key string) string           { return "I#" + key }
func tombSK(id string) string            { return "T#" + id }
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{PartitionKey: s(pk), SortKey: s(sk)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}
func b(v []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: v} }
func ts(t time.Time) types.AttributeValue {
	return s(t.UTC().Format(time.RFC3339Nano))
}
func list(vs []string) types.AttributeValue {
	l := make([]types.AttributeValue, len(vs))
	for i, v := range vs {
		l[i] = s(v)
	}
	return &types.AttributeValueMemberL{Value: l}
}

type item map[string]types.AttributeValue

func (it item) str(name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (it item) num(name string) int64 {
	if v, ok := it[name].(*types.AttributeValueMemberN); ok {
		x, _ := strconv.ParseInt(v.Value, 10, 64)
		return x
	}
	return 0
}

func (it item) bytes(name string) []byte {
	if v, ok := it[name].(*types.AttributeValueMemberB); ok {
		return append([]byte(nil), v.Value...)
	}
	return nil
}

func (it item) boolean(name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func (it item) time(name string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, it.str(name))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func (it item) strs(name string) []string {
	v, ok := it[name].(*types.AttributeValueMemberL)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(v.Value))
	for _, e := range v.Value {
		if x, ok := e.(*types.AttributeValueMemberS); ok {
			out = append(out, x.Value)
		}
	}
	return out
}

// secretItem is the record of s under pk/sk (the ID item or the name item).
func secretItem(pk, sk string, sec *secrets.Secret) item {
	it := item{
		PartitionKey: s(pk), SortKey: s(sk),
		aID: s(sec.ID), aProject: s(sec.Project), aName: s(sec.Name),
		aCurrent: n(int64(sec.CurrentVersion)), aLatest: n(int64(sec.LatestVersion)),
		aCreatedAt: ts(sec.CreatedAt), aUpdatedAt: ts(sec.UpdatedAt), aRevision: n(sec.Revision),
	}
	if sec.Description != "" {
		it[aDescription] = s(sec.Description)
	}
	return it
}

func (it item) secret() *secrets.Secret {
	return &secrets.Secret{
		ID: it.str(aID), Project: it.str(aProject), Name: it.str(aName), Description: it.str(aDescription),
		CurrentVersion: int(it.num(aCurrent)), LatestVersion: int(it.num(aLatest)),
		CreatedAt: it.time(aCreatedAt), UpdatedAt: it.time(aUpdatedAt), Revision: it.num(aRevision),
	}
}

func versionItem(v *secrets.Version) item {
	it := item{
		PartitionKey: s(secretPK(v.Project, v.SecretID)), SortKey: s(versionSK(v.Number)),
		aProject: s(v.Project), aSecretID: s(v.SecretID), aNumber: n(int64(v.Number)), aState: s(string(v.State)),
		aSHA256: s(v.SHA256), aKeys: list(v.Keys), aCreatedAt: ts(v.CreatedAt), aChangedAt: ts(v.StateChangedAt),
	}
	if v.Ciphertext != nil && v.State != secrets.Destroyed {
		it[aCiphertext] = b(v.Ciphertext)
	}
	return it
}

func (it item) version() *secrets.Version {
	return &secrets.Version{
		Project: it.str(aProject), SecretID: it.str(aSecretID), Number: int(it.num(aNumber)),
		State: secrets.State(it.str(aState)), SHA256: it.str(aSHA256), Keys: it.strs(aKeys),
		CreatedAt: it.time(aCreatedAt), StateChangedAt: it.time(aChangedAt), Ciphertext: it.bytes(aCiphertext),
	}
}

func apiKeyItem(pk, sk string, k *secrets.APIKey) item {
	it := item{
		PartitionKey: s(pk), SortKey: s(sk),
		aID: s(k.ID), aProject: s(k.Project), aScopes: list(k.Scopes), aHash: s(k.Hash), aCreatedAt: ts(k.CreatedAt),
	}
	if k.Name != "" {
		it[aName] = s(k.Name)
	}
	if !k.LastUsedAt.IsZero() {
		it[aLastUsed] = ts(k.LastUsedAt)
	}
	return it
}

func (it item) apiKey() *secrets.APIKey {
	k := &secrets.APIKey{
		ID: it.str(aID), Project: it.str(aProject), Name: it.str(aName), Scopes: it.strs(aScopes),
		Hash: it.str(aHash), CreatedAt: it.time(aCreatedAt),
	}
	if it.str(aLastUsed) != "" {
		k.LastUsedAt = it.time(aLastUsed)
	}
	return k
}

func idemItem(r *secrets.IdempotencyRecord) item {
	it := item{
		PartitionKey: s(projectPK(r.Project)), SortKey: s(idemSK(r.Key)),
		aProject: s(r.Project), aID: s(r.Key), aRequestHash: s(r.RequestHash),
		aDone: &types.AttributeValueMemberBOOL{Value: r.Done}, aStatus: n(int64(r.Status)),
		aCreatedAt: ts(r.CreatedAt), aExpiresMS: n(r.ExpiresAt.UnixMilli()),
		// DynamoDB's TTL wants seconds; round up so it never deletes early.
		TTLAttribute: n((r.ExpiresAt.UnixMilli() + 999) / 1000),
	}
	if len(r.Header) > 0 {
		m := make(map[string]types.AttributeValue, len(r.Header))
		for k, v := range r.Header {
			m[k] = s(v)
		}
		it[aHeader] = &types.AttributeValueMemberM{Value: m}
	}
	if len(r.Body) > 0 {
		it[aBody] = b(r.Body)
	}
	return it
}

func (it item) idempotency() *secrets.IdempotencyRecord {
	r := &secrets.IdempotencyRecord{
		Project: it.str(aProject), Key: it.str(aID), RequestHash: it.str(aRequestHash), Done: it.boolean(aDone),
		Status: int(it.num(aStatus)), Body: it.bytes(aBody), CreatedAt: it.time(aCreatedAt),
		ExpiresAt: time.UnixMilli(it.num(aExpiresMS)).UTC(),
	}
	if m, ok := it[aHeader].(*types.AttributeValueMemberM); ok {
		r.Header = make(map[string]string, len(m.Value))
		for k, v := range m.Value {
			if x, ok := v.(*types.AttributeValueMemberS); ok {
				r.Header[k] = x.Value
			}
		}
	}
	return r
}

func resolutionItem(r *secrets.Resolution) item {
	it := item{
		PartitionKey: s(secretPK(r.Project, r.SecretID)), SortKey: s(resolutionSK(r.ID)),
		aID: s(r.ID), aProject: s(r.Project), aSecretID: s(r.SecretID), aNumber: n(int64(r.Version)),
		aKeys: list(r.Keys), aResolvedAt: ts(r.ResolvedAt),
	}
	if r.SecretName != "" {
		it[aSecretName] = s(r.SecretName)
	}
	if len(r.Run) > 0 {
		it[aRun] = b(r.Run)
	}
	return it
}

func (it item) resolution() *secrets.Resolution {
	r := &secrets.Resolution{
		ID: it.str(aID), Project: it.str(aProject), SecretID: it.str(aSecretID), SecretName: it.str(aSecretName),
		Version: int(it.num(aNumber)), Keys: it.strs(aKeys), ResolvedAt: it.time(aResolvedAt),
	}
	if run := it.bytes(aRun); len(run) > 0 {
		r.Run = run
	}
	return r
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
