// Package dynamo is the DynamoDB Store: one table, every invariant a
// condition of the write that could break it, never a read-then-write.
//
// A secret lives in two items of its project's partition, one by immutable
// ID and one by name, each a full copy of the record, so a get by either is
// one GetItem and a page of names is one Query. Creating, updating and
// deleting a secret is one TransactWriteItems whose conditions are the
// secret's revision, the absence of a claimed name, the absence of a new
// version number and the From state of each version change. Versions live
// in a partition of their own per secret. Reads that decide anything are
// strongly consistent; nothing ever scans.
//
// It imports pkg/secrets and the AWS SDK's DynamoDB client, reached only
// through the narrow API interface.
package dynamo

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/mobius-secrets/mobius/pkg/secrets"
)

// API is the part of the DynamoDB client the store calls.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Store is a secrets.Store on one DynamoDB table. It is safe for
// concurrent use.
type Store struct {
	api   API
	table string
	// attempts bounds the retries of unprocessed batch items and of
	// transactions that collided with another one in flight.
	attempts int
	sleep    func(ctx context.Context, attempt int) error
}

var _ secrets.Store = (*Store)(nil)

// Option tunes a Store.
type Option func(*Store)

// WithAttempts bounds how often the store retries unprocessed batch items
// and transactions that collided with a concurrent one (8 by default).
func WithAttempts(n int) Option { return func(s *Store) { s.attempts = max(n, 1) } }

// New returns a Store on the table, which must exist (see CreateTable).
func New(api API, table string, opts ...Option) *Store {
	st := &Store{api: api, table: table, attempts: 8, sleep: backoff}
	for _, o := range opts {
		o(st)
	}
	return st
}

// backoff waits 2^attempt milliseconds, up to 128 ms.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Millisecond << min(attempt, 7))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cond is a condition expression with its placeholders.
type cond struct {
	expr   string
	names  map[string]string
	values map[string]types.AttributeValue
}

var (
	notExists = cond{expr: "attribute_not_exists(#pk)", names: map[string]string{"#pk": PartitionKey}}
	exists    = cond{expr: "attribute_exists(#pk)", names: map[string]string{"#pk": PartitionKey}}
)

func revIs(prev int64) cond {
	return cond{expr: "#rev = :prev", names: map[string]string{"#rev": aRevision}, values: map[string]types.AttributeValue{":prev": n(prev)}}
}

func (st *Store) put(it item, c cond) *types.Put {
	return &types.Put{
		TableName: aws.String(st.table), Item: it, ConditionExpression: aws.String(c.expr),
		ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
	}
}

func (st *Store) del(k map[string]types.AttributeValue, c cond) *types.Delete {
	return &types.Delete{
		TableName: aws.String(st.table), Key: k, ConditionExpression: aws.String(c.expr),
		ExpressionAttributeNames: c.names, ExpressionAttributeValues: c.values,
	}
}

// transact runs a transaction built afresh by build for every attempt (a
// replayed input would replay its ClientRequestToken, and DynamoDB would
// then skip the conditions). It retries only collisions with a concurrent
// transaction; a failed condition is returned for the caller to classify.
func (st *Store) transact(ctx context.Context, build func() []types.TransactWriteItem) error {
	for i := 0; ; i++ {
		_, err := st.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: build()})
		if err == nil {
			return nil
		}
		rs, _ := cancelled(err)
		if !raced(err, rs) || i+1 >= st.attempts {
			return err
		}
		if err := st.sleep(ctx, i); err != nil {
			return fail("TransactWriteItems", err)
		}
	}
}

// classify turns a failed transaction into a domain error: guard is the
// index of the item whose failed condition means Conflict (-1 if none).
// Any other failed condition, or a lost race, is Aborted.
func classify(err error, guard int) (failed []int, out error) {
	rs, ok := cancelled(err)
	if !ok {
		return nil, fail("TransactWriteItems", err)
	}
	if throttledReason(rs) {
		return nil, secrets.WrapError(secrets.Unavailable, err, "the database is throttling writes")
	}
	if raced(err, rs) {
		return nil, secrets.WrapError(secrets.Aborted, err, "a concurrent write won")
	}
	for i := range rs {
		if reasonCode(rs, i) == "ConditionalCheckFailed" {
			failed = append(failed, i)
		}
	}
	if len(failed) == 0 {
		return nil, fail("TransactWriteItems", err)
	}
	if len(failed) == 1 && failed[0] == guard {
		return failed, secrets.WrapError(secrets.Conflict, err, "the name is taken")
	}
	return failed, secrets.WrapError(secrets.Aborted, err, "the secret changed concurrently")
}

func (st *Store) get(ctx context.Context, pk, sk string) (item, error) {
	out, err := st.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(st.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fail("GetItem", err)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return item(out.Item), nil
}

// CreateSecret writes the name item, the ID item and version 1 in one
// transaction, each on the condition that it does not exist yet.
func (st *Store) CreateSecret(ctx context.Context, sec *secrets.Secret, v *secrets.Version) error {
	pk := projectPK(sec.Project)
	err := st.transact(ctx, func() []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Put: st.put(secretItem(pk, nameSK(sec.Name), sec), notExists)},
			{Put: st.put(secretItem(pk, idSK(sec.ID), sec), notExists)},
			{Put: st.put(versionItem(v), notExists)},
		}
	})
	if err == nil {
		return nil
	}
	failed, err := classify(err, 0)
	if len(failed) > 0 {
		return secrets.WrapError(secrets.Conflict, err, "a secret with this name or ID exists")
	}
	return err
}

// GetSecret is one consistent GetItem of the ID item.
func (st *Store) GetSecret(ctx context.Context, project, id string) (*secrets.Secret, error) {
	it, err := st.get(ctx, projectPK(project), idSK(id))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, secrets.Errorf(secrets.NotFound, "secret not found")
	}
	return it.secret(), nil
}

// GetSecretByName is one consistent GetItem of the name item.
func (st *Store) GetSecretByName(ctx context.Context, project, name string) (*secrets.Secret, error) {
	it, err := st.get(ctx, projectPK(project), nameSK(name))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, secrets.Errorf(secrets.NotFound, "secret not found")
	}
	return it.secret(), nil
}

// maxRune sorts after every character a name can hold.
const maxRune = "\U0010FFFF"

// ListSecrets is one consistent Query of the project's name items between
// the prefix (or just after q.After) and the end of the prefix.
func (st *Store) ListSecrets(ctx context.Context, project string, q secrets.ListQuery) ([]*secrets.Secret, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = secrets.MaxPageSize
	}
	lo, hi := nameSK(q.Prefix), nameSK(q.Prefix)+maxRune
	skip := ""
	if q.After != "" && nameSK(q.After) >= lo {
		// BETWEEN is inclusive: ask for one more and drop After itself.
		lo, skip = nameSK(q.After), nameSK(q.After)
		limit++
	}
	if lo > hi {
		return []*secrets.Secret{}, nil
	}
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": PartitionKey, "#sk": SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(projectPK(project)), ":lo": s(lo), ":hi": s(hi),
		},
	}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*secrets.Secret, 0, len(items))
	for _, it := range items {
		if skip != "" && it.str(SortKey) == skip {
			continue
		}
		out = append(out, it.secret())
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// query runs a consistent Query for up to limit items (all, if limit <= 0),
// following LastEvaluatedKey only when a page came back short (1 MB).
func (st *Store) query(ctx context.Context, in *dynamodb.QueryInput, limit int) ([]item, error) {
	var out []item
	var start map[string]types.AttributeValue
	for {
		q := *in
		q.TableName = aws.String(st.table)
		q.ConsistentRead = aws.Bool(true)
		q.ExclusiveStartKey = start
		if limit > 0 {
			q.Limit = aws.Int32(int32(limit - len(out)))
		}
		res, err := st.api.Query(ctx, &q)
		if err != nil {
			return nil, fail("Query", err)
		}
		for _, it := range res.Items {
			out = append(out, item(it))
		}
		if len(res.LastEvaluatedKey) == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		start = res.LastEvaluatedKey
	}
}

// UpdateSecret is one transaction: the ID item and the name item on the
// condition of the previous revision (a rename deletes the old name item
// under that condition and claims the new one on the condition that it does
// not exist), the new version on the condition that its number is free,
// and each state change on the condition of its From state.
func (st *Store) UpdateSecret(ctx context.Context, u *secrets.Update) error {
	sec := u.Secret
	pk := projectPK(sec.Project)
	rename := u.OldName != "" && u.OldName != sec.Name
	guard := -1
	build := func() []types.TransactWriteItem {
		items := []types.TransactWriteItem{{Put: st.put(secretItem(pk, idSK(sec.ID), sec), revIs(u.PrevRevision))}}
		if rename {
			items = append(items, types.TransactWriteItem{Delete: st.del(key(pk, nameSK(u.OldName)), revIs(u.PrevRevision))})
			guard = len(items)
			items = append(items, types.TransactWriteItem{Put: st.put(secretItem(pk, nameSK(sec.Name), sec), notExists)})
		} else {
			items = append(items, types.TransactWriteItem{Put: st.put(secretItem(pk, nameSK(sec.Name), sec), revIs(u.PrevRevision))})
		}
		if u.Put != nil {
			items = append(items, types.TransactWriteItem{Put: st.put(versionItem(u.Put), notExists)})
		}
		for _, c := range u.Changes {
			items = append(items, types.TransactWriteItem{Update: st.stateChange(sec.Project, sec.ID, c)})
		}
		return items
	}
	err := st.transact(ctx, build)
	if err == nil {
		return nil
	}
	failed, err := classify(err, guard)
	if slices.Contains(failed, 0) {
		return st.goneOrAborted(ctx, pk, sec.ID, err)
	}
	return err
}

func (st *Store) stateChange(project, id string, c secrets.StateChange) *types.Update {
	expr := "SET #st = :to, #ch = :at"
	names := map[string]string{"#st": aState, "#ch": aChangedAt}
	values := map[string]types.AttributeValue{":to": s(string(c.To)), ":at": ts(c.At), ":from": s(string(c.From))}
	if c.To == secrets.Destroyed {
		// The ciphertext is overwritten by a NULL in the same conditional
		// write. (An overwrite rather than REMOVE: minidyn, one of the
		// stand-ins the store is tested on, ignores a top-level REMOVE.)
		expr += ", #ct = :gone"
		names["#ct"] = aCiphertext
		values[":gone"] = &types.AttributeValueMemberNULL{Value: true}
	}
	return &types.Update{
		TableName: aws.String(st.table), Key: key(secretPK(project, id), versionSK(c.Number)),
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String("#st = :from"),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values,
	}
}

// goneOrAborted tells a secret that disappeared (NotFound) from one whose
// revision moved on (Aborted), after its ID item's condition failed.
func (st *Store) goneOrAborted(ctx context.Context, pk, id string, aborted error) error {
	it, err := st.get(ctx, pk, idSK(id))
	if err != nil {
		return err
	}
	if it == nil {
		return secrets.Errorf(secrets.NotFound, "secret not found")
	}
	return aborted
}

// DeleteSecret deletes the ID and name items in one transaction on the
// condition of the revision, leaving a marker of the versions still to
// purge; then deletes the secret's partition (versions and audit) and the
// marker. If the purge fails, the secret is gone all the same and the next
// delete in the project finishes the purge.
func (st *Store) DeleteSecret(ctx context.Context, project, id string, prevRevision int64) error {
	pk := projectPK(project)
	cur, err := st.get(ctx, pk, idSK(id))
	if err != nil {
		return err
	}
	if cur == nil {
		return secrets.Errorf(secrets.NotFound, "secret not found")
	}
	if cur.num(aRevision) != prevRevision {
		return secrets.Errorf(secrets.Aborted, "the secret changed concurrently")
	}
	name := cur.str(aName)
	err = st.transact(ctx, func() []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Delete: st.del(key(pk, idSK(id)), revIs(prevRevision))},
			{Delete: st.del(key(pk, nameSK(name)), revIs(prevRevision))},
			{Put: &types.Put{TableName: aws.String(st.table), Item: item{
				PartitionKey: s(pk), SortKey: s(tombSK(id)), aID: s(id), aProject: s(project),
			}}},
		}
	})
	if err != nil {
		failed, err := classify(err, -1)
		if slices.Contains(failed, 0) {
			return st.goneOrAborted(ctx, pk, id, err)
		}
		return err
	}
	if st.purge(ctx, project, id) == nil {
		st.sweep(ctx, project)
	}
	return nil
}

// purge deletes every item of a deleted secret's partition, then its
// delete-pending marker.
func (st *Store) purge(ctx context.Context, project, id string) error {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#sk": SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(secretPK(project, id))},
		ProjectionExpression:      aws.String("#pk, #sk"),
	}, 0)
	if err != nil {
		return err
	}
	reqs := make([]types.WriteRequest, len(items))
	for i, it := range items {
		reqs[i] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(it.str(PartitionKey), it.str(SortKey))}}
	}
	if err := st.batchWrite(ctx, reqs); err != nil {
		return err
	}
	_, err = st.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key(projectPK(project), tombSK(id))})
	return fail("DeleteItem", err)
}

// sweep finishes purges that an earlier delete in the project left undone.
func (st *Store) sweep(ctx context.Context, project string) {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :t)"),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#sk": SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(projectPK(project)), ":t": s("T#")},
	}, 10)
	if err != nil {
		return
	}
	for _, it := range items {
		if st.purge(ctx, project, it.str(aID)) != nil {
			return
		}
	}
}

// batchWrite writes reqs 25 at a time, retrying unprocessed items.
func (st *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for len(reqs) > 0 {
		chunk := reqs[:min(25, len(reqs))]
		reqs = reqs[len(chunk):]
		for i := 0; len(chunk) > 0; i++ {
			if i > 0 {
				if i >= st.attempts {
					return secrets.Errorf(secrets.Unavailable, "the database is throttling writes")
				}
				if err := st.sleep(ctx, i); err != nil {
					return fail("BatchWriteItem", err)
				}
			}
			out, err := st.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{st.table: chunk},
			})
			if err != nil {
				return fail("BatchWriteItem", err)
			}
			chunk = out.UnprocessedItems[st.table]
		}
	}
	return nil
}

// batchGet reads keys consistently, 100 at a time, retrying unprocessed
// keys.
func (st *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) ([]item, error) {
	var out []item
	for len(keys) > 0 {
		chunk := keys[:min(100, len(keys))]
		keys = keys[len(chunk):]
		for i := 0; len(chunk) > 0; i++ {
			if i > 0 {
				if i >= st.attempts {
					return nil, secrets.Errorf(secrets.Unavailable, "the database is throttling reads")
				}
				if err := st.sleep(ctx, i); err != nil {
					return nil, fail("BatchGetItem", err)
				}
			}
			res, err := st.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems: map[string]types.KeysAndAttributes{st.table: {Keys: chunk, ConsistentRead: aws.Bool(true)}},
			})
			if err != nil {
				return nil, fail("BatchGetItem", err)
			}
			for _, it := range res.Responses[st.table] {
				out = append(out, item(it))
			}
			chunk = res.UnprocessedKeys[st.table].Keys
		}
	}
	return out, nil
}

// GetVersion is one consistent GetItem.
func (st *Store) GetVersion(ctx context.Context, project, secretID string, num int) (*secrets.Version, error) {
	it, err := st.get(ctx, secretPK(project, secretID), versionSK(num))
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, secrets.Errorf(secrets.NotFound, "version not found")
	}
	return placed(it.version(), project, secretID, num)
}

// placed returns v if the item read from the slot of version num of the
// secret says it is that version. The ciphertext is bound to the number the
// item states, so an item copied into another version's slot (an old
// version replayed as the current one) must not be believed.
func placed(v *secrets.Version, project, secretID string, num int) (*secrets.Version, error) {
	if v.Project != project || v.SecretID != secretID || v.Number != num {
		return nil, secrets.Errorf(secrets.Integrity, "the stored item of version %d of secret %s is not that version", num, secretID)
	}
	return v, nil
}

// ListVersions is one consistent Query, newest first, without ciphertext.
func (st *Store) ListVersions(ctx context.Context, project, secretID string, before, limit int) ([]*secrets.Version, error) {
	hi := versionSK(9999999999)
	if before > 0 {
		if before <= 1 {
			return []*secrets.Version{}, nil
		}
		hi = versionSK(before - 1)
	}
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{
			"#pk": PartitionKey, "#sk": SortKey, "#p": aProject, "#sid": aSecretID, "#n": aNumber, "#st": aState,
			"#sha": aSHA256, "#keys": aKeys, "#ca": aCreatedAt, "#ch": aChangedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(secretPK(project, secretID)), ":lo": s(versionSK(0)), ":hi": s(hi),
		},
		ProjectionExpression: aws.String("#pk, #sk, #p, #sid, #n, #st, #sha, #keys, #ca, #ch"),
		ScanIndexForward:     aws.Bool(false),
	}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*secrets.Version, len(items))
	for i, it := range items {
		num, _ := strconv.Atoi(strings.TrimPrefix(it.str(SortKey), "V#"))
		v, err := placed(it.version(), project, secretID, num)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// CurrentVersions is one consistent BatchGetItem of the name items and one
// of their ENABLED versions (per 100 names). A version that moved on
// between the two reads is read again, with its name.
func (st *Store) CurrentVersions(ctx context.Context, project string, names []string) (map[string]*secrets.Current, error) {
	out := make(map[string]*secrets.Current, len(names))
	todo := make([]string, 0, len(names))
	for _, nm := range names {
		if !slices.Contains(todo, nm) {
			todo = append(todo, nm)
		}
	}
	pk := projectPK(project)
	for attempt := 0; len(todo) > 0; attempt++ {
		if attempt > 0 {
			if attempt >= st.attempts {
				return nil, secrets.Errorf(secrets.Unavailable, "too much contention reading current versions; try again")
			}
			if err := st.sleep(ctx, attempt); err != nil {
				return nil, fail("BatchGetItem", err)
			}
		}
		keys := make([]map[string]types.AttributeValue, len(todo))
		for i, nm := range todo {
			keys[i] = key(pk, nameSK(nm))
		}
		its, err := st.batchGet(ctx, keys)
		if err != nil {
			return nil, err
		}
		var vkeys []map[string]types.AttributeValue
		found := map[string]*secrets.Secret{}
		for _, it := range its {
			sec := it.secret()
			found[sec.Name] = sec
			if sec.CurrentVersion != 0 {
				vkeys = append(vkeys, key(secretPK(project, sec.ID), versionSK(sec.CurrentVersion)))
			}
		}
		vers := map[string]*secrets.Version{}
		if len(vkeys) > 0 {
			vits, err := st.batchGet(ctx, vkeys)
			if err != nil {
				return nil, err
			}
			for _, it := range vits {
				v := it.version()
				vers[it.str(PartitionKey)+"|"+it.str(SortKey)] = v
			}
		}
		var again []string
		for _, nm := range todo {
			sec, ok := found[nm]
			if !ok {
				continue
			}
			c := &secrets.Current{Secret: sec}
			if sec.CurrentVersion != 0 {
				v := vers[secretPK(project, sec.ID)+"|"+versionSK(sec.CurrentVersion)]
				if v == nil || v.State != secrets.Enabled {
					again = append(again, nm) // the secret moved on between the reads
					continue
				}
				if c.Version, err = placed(v, project, sec.ID, sec.CurrentVersion); err != nil {
					return nil, err
				}
			}
			out[nm] = c
		}
		todo = again
	}
	return out, nil
}

// CreateAPIKey writes the key by hash and its project listing in one
// transaction, each on the condition that it does not exist.
func (st *Store) CreateAPIKey(ctx context.Context, k *secrets.APIKey) error {
	err := st.transact(ctx, func() []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Put: st.put(apiKeyItem(keyPK(k.Hash), "K", k), notExists)},
			{Put: st.put(apiKeyItem(projectPK(k.Project), keyListSK(k.ID), k), notExists)},
		}
	})
	if err == nil {
		return nil
	}
	failed, err := classify(err, -1)
	if len(failed) > 0 {
		return secrets.WrapError(secrets.Conflict, err, "an API key with this ID or hash exists")
	}
	return err
}

// GetAPIKeyByHash is one consistent GetItem.
func (st *Store) GetAPIKeyByHash(ctx context.Context, hash string) (*secrets.APIKey, error) {
	it, err := st.get(ctx, keyPK(hash), "K")
	if err != nil {
		return nil, err
	}
	if it == nil {
		return nil, secrets.Errorf(secrets.NotFound, "API key not found")
	}
	return it.apiKey(), nil
}

// ListAPIKeys queries the project's listing items (IDs are time-ordered).
func (st *Store) ListAPIKeys(ctx context.Context, project string) ([]*secrets.APIKey, error) {
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :k)"),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#sk": SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": s(projectPK(project)), ":k": s("K#")},
	}, 0)
	if err != nil {
		return nil, err
	}
	out := make([]*secrets.APIKey, len(items))
	for i, it := range items {
		out[i] = it.apiKey()
	}
	slices.SortStableFunc(out, func(a, b *secrets.APIKey) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// DeleteAPIKey reads the listing item for the hash, then deletes both items
// in one transaction on the condition that they exist.
func (st *Store) DeleteAPIKey(ctx context.Context, project, id string) error {
	it, err := st.get(ctx, projectPK(project), keyListSK(id))
	if err != nil {
		return err
	}
	if it == nil {
		return secrets.Errorf(secrets.NotFound, "API key not found")
	}
	hash := it.str(aHash)
	err = st.transact(ctx, func() []types.TransactWriteItem {
		return []types.TransactWriteItem{
			{Delete: st.del(key(projectPK(project), keyListSK(id)), exists)},
			{Delete: &types.Delete{TableName: aws.String(st.table), Key: key(keyPK(hash), "K")}},
		}
	})
	if err == nil {
		return nil
	}
	failed, err := classify(err, -1)
	if len(failed) > 0 {
		return secrets.Errorf(secrets.NotFound, "API key not found")
	}
	return err
}

// TouchAPIKey sets the key's last use on its listing item, then (with the
// hash that item returns) on the key item, each only if it still exists.
func (st *Store) TouchAPIKey(ctx context.Context, project, id string, t time.Time) error {
	out, err := st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(projectPK(project), keyListSK(id)),
		UpdateExpression:          aws.String("SET #lu = :t"),
		ConditionExpression:       aws.String(exists.expr),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#lu": aLastUsed},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": ts(t)},
		ReturnValues:              types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return secrets.Errorf(secrets.NotFound, "API key not found")
	}
	if err != nil {
		return fail("UpdateItem", err)
	}
	_, err = st.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key(keyPK(item(out.Attributes).str(aHash)), "K"),
		UpdateExpression:          aws.String("SET #lu = :t"),
		ConditionExpression:       aws.String(exists.expr),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#lu": aLastUsed},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": ts(t)},
	})
	if isConditionFailed(err) {
		return secrets.Errorf(secrets.NotFound, "API key not found")
	}
	return fail("UpdateItem", err)
}

func isConditionFailed(err error) bool {
	code, _ := apiError(err)
	return code == "ConditionalCheckFailedException"
}

// CreateIdempotency puts the record on the condition that none exists or
// the one that does has expired by r.CreatedAt.
func (st *Store) CreateIdempotency(ctx context.Context, r *secrets.IdempotencyRecord) error {
	_, err := st.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(st.table), Item: idemItem(r),
		ConditionExpression:       aws.String("attribute_not_exists(#pk) OR #exp <= :now"),
		ExpressionAttributeNames:  map[string]string{"#pk": PartitionKey, "#exp": aExpiresMS},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(r.CreatedAt.UnixMilli())},
	})
	if isConditionFailed(err) {
		return secrets.Errorf(secrets.Conflict, "the Idempotency-Key is in use")
	}
	return fail("PutItem", err)
}

// GetIdempotency is one consistent GetItem; a record past its expiry (which
// DynamoDB's TTL deletes only eventually) counts as absent.
func (st *Store) GetIdempotency(ctx context.Context, project, k string, now time.Time) (*secrets.IdempotencyRecord, error) {
	it, err := st.get(ctx, projectPK(project), idemSK(k))
	if err != nil {
		return nil, err
	}
	if it == nil || it.num(aExpiresMS) <= now.UnixMilli() {
		return nil, secrets.Errorf(secrets.NotFound, "idempotency record not found")
	}
	return it.idempotency(), nil
}

// CompleteIdempotency replaces the record.
func (st *Store) CompleteIdempotency(ctx context.Context, r *secrets.IdempotencyRecord) error {
	_, err := st.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: idemItem(r)})
	return fail("PutItem", err)
}

// DeleteIdempotency deletes the record.
func (st *Store) DeleteIdempotency(ctx context.Context, project, k string) error {
	_, err := st.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key(projectPK(project), idemSK(k))})
	return fail("DeleteItem", err)
}

// AddResolutions writes the records in batches of 25.
func (st *Store) AddResolutions(ctx context.Context, rs []*secrets.Resolution) error {
	reqs := make([]types.WriteRequest, len(rs))
	for i, r := range rs {
		reqs[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: resolutionItem(r)}}
	}
	return st.batchWrite(ctx, reqs)
}

// ListResolutions is one consistent Query, newest first.
func (st *Store) ListResolutions(ctx context.Context, project, secretID, beforeID string, limit int) ([]*secrets.Resolution, error) {
	hi, skip := resolutionSK(maxRune), ""
	if beforeID != "" {
		hi, skip = resolutionSK(beforeID), resolutionSK(beforeID)
		if limit > 0 {
			limit++
		}
	}
	items, err := st.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": PartitionKey, "#sk": SortKey},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(secretPK(project, secretID)), ":lo": s(resolutionSK("")), ":hi": s(hi),
		},
		ScanIndexForward: aws.Bool(false),
	}, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*secrets.Resolution, 0, len(items))
	for _, it := range items {
		if it.str(SortKey) == skip {
			continue
		}
		out = append(out, it.resolution())
	}
	if beforeID != "" && limit > 0 && len(out) > limit-1 {
		out = out[:limit-1]
	}
	return out, nil
}
