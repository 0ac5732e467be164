package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mobius-secrets/mobius/pkg/kv"
)

// AuditRetention is how long a resolution audit record is kept: whether or
// not its secret still exists (deleting a secret keeps its audit), after
// which the store may drop it (DynamoDB's time to live does).
const AuditRetention = 400 * 24 * time.Hour

// RecordResolutions stores audit records of a resolve call, each only if
// no record has its ID (the audit is append-only: nothing overwrites or
// deletes a record before its retention ends).
func (s *Service) RecordResolutions(ctx context.Context, rs []*Resolution) error {
	if len(rs) == 0 {
		return nil
	}
	now := s.Now()
	ops := make([]kv.Op, 0, len(rs))
	for _, r := range rs {
		if r.ID == "" {
			r.ID = NewULID(now, s.rand)
		}
		if r.ResolvedAt.IsZero() {
			r.ResolvedAt = now
		}
		rec := &resolutionRec{
			ID: r.ID, Project: r.Project, SecretID: r.SecretID, SecretName: r.SecretName, Alias: r.Alias,
			Version: r.Version, Keys: r.Keys, GrantID: r.GrantID, KeyID: r.KeyID, Run: r.Run, Step: r.Step, ResolvedAt: at(r.ResolvedAt),
		}
		ops = append(ops, kv.Put(kv.Item{
			Key: auditKey(r.Project, r.SecretID, r.ID), Value: encode(rec), Expires: r.ResolvedAt.Add(AuditRetention),
		}, kv.IfAbsent(time.Time{})))
	}
	for chunk := range slices.Chunk(ops, kv.MaxOps) {
		if err := s.commit(ctx, nil, nil, chunk...); err != nil {
			if conditionFailed(err) >= 0 {
				return WrapError(Internal, err, "an audit record's ID is taken")
			}
			return err
		}
	}
	s.recordLastUse(ctx, rs)
	return nil
}

// ListResolutionsOf returns a page of the audit of the secret with ID
// secretID, newest first, with IDs before beforeID, and whether more
// follow. It needs only the ID: the audit of a deleted secret stays
// listable. Records past AuditRetention are left out.
func (s *Service) ListResolutionsOf(ctx context.Context, project, secretID, beforeID string, limit int) ([]*Resolution, bool, error) {
	if err := checkLimit(limit); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultPageSize
	}
	if !ValidProject(project) || !IsSecretID(secretID) {
		return []*Resolution{}, false, nil
	}
	// Each shard holds a part of the audit in ID order: the page is the
	// newest limit+1 of their merge.
	var items []kv.Item
	for shard := range auditShards {
		q := kv.Query{Partition: auditPart(project, secretID, shard), Prefix: "R#", Reverse: true, Limit: limit + 1}
		if beforeID != "" {
			q.After = "R#" + beforeID
		}
		got, err := s.query(ctx, q)
		if err != nil {
			return nil, false, err
		}
		items = append(items, got...)
	}
	slices.SortFunc(items, func(a, b kv.Item) int { return strings.Compare(b.Sort, a.Sort) })
	now := s.Now()
	list := make([]*Resolution, 0, min(len(items), limit+1))
	var size pageBytes
	for i := range items {
		if len(list) > limit {
			break
		}
		if items[i].ExpiredAt(now) {
			continue
		}
		r, err := s.resolutionFrom(&items[i], project, secretID)
		if err != nil {
			return nil, false, err
		}
		if len(list) < limit && size.full(len(items[i].Value), len(list)) {
			return list, true, nil
		}
		list = append(list, r)
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}

// Last use. Each version's last resolution is kept in a small item of its
// own in the audit's key space (the only place the resolve function may
// write): A#project#secret#lr / L#<version>, written at most once per
// LastUsedInterval per version and process, as API keys' last use is.

func lastUsePart(project, id string) string { return "A#" + project + "#" + id + "#lr" }

func lastUseKey(project, id string, n int) kv.Key {
	return kv.Key{Partition: lastUsePart(project, id), Sort: versionSort("L#", n)}
}

type lastUseRec struct {
	Version int   `json:"v" cbor:"0,keyasint"`
	At      stamp `json:"at" cbor:"1,keyasint"`
}

// recordLastUse notes that the versions of rs were resolved, best effort:
// a failure leaves last_resolved_at older, never the audit incomplete.
func (s *Service) recordLastUse(ctx context.Context, rs []*Resolution) {
	var ops []kv.Op
	for _, r := range rs {
		k := lastUseKey(r.Project, r.SecretID, r.Version)
		if _, fresh := s.lastUse.get(k.String()); fresh {
			continue
		}
		ops = append(ops, kv.Put(kv.Item{Key: k, Value: encode(&lastUseRec{Version: r.Version, At: at(r.ResolvedAt)}),
			Expires: r.ResolvedAt.Add(AuditRetention)}, kv.Cond{}))
	}
	for chunk := range slices.Chunk(ops, kv.MaxOps) {
		if err := s.kv.Commit(ctx, chunk...); err != nil {
			s.log.WarnContext(ctx, "recording a version's last use failed", "err", err.Error())
			return
		}
		for _, op := range chunk {
			s.lastUse.put(op.Item.Key.String(), true)
		}
	}
}

// lastResolved returns when each version of sec was last resolved (within
// LastUsedInterval), for the versions that ever were.
func (s *Service) lastResolved(ctx context.Context, sec *Secret) (map[int]time.Time, error) {
	out := map[int]time.Time{}
	q := kv.Query{Partition: lastUsePart(sec.Project, sec.ID), Prefix: "L#", Limit: kv.MaxOps * 10}
	for {
		items, err := s.query(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range items {
			var r lastUseRec
			if s.decode(&items[i], &r) != nil || items[i].Key != lastUseKey(sec.Project, sec.ID, r.Version) {
				continue
			}
			out[r.Version] = r.At.UTC()
		}
		if len(items) < q.Limit {
			return out, nil
		}
		q.After = items[len(items)-1].Sort
	}
}

// lastConsumer returns the newest audit record of version n of sec among
// the recent ones (nil if none is).
func (s *Service) lastConsumer(ctx context.Context, sec *Secret, n int) (*Resolution, error) {
	list, _, err := s.ListResolutionsOf(ctx, sec.Project, sec.ID, "", MaxPageSize)
	if err != nil {
		return nil, err
	}
	for _, r := range list {
		if r.Version == n {
			return r, nil
		}
	}
	return nil, nil
}

// Consumer is one reader of a version, as the audit tells: the grant's run
// and the caller's step, how often and when it last read.
type Consumer struct {
	Run      json.RawMessage
	Step     json.RawMessage
	GrantIDs []string
	Count    int
	LastSeen time.Time
}

// VersionConsumers is who read one version of a secret since a time.
type VersionConsumers struct {
	Version        int
	State          State
	LastResolvedAt time.Time // zero if never
	Consumers      []Consumer
}

// MaxConsumerRecords bounds how many audit records Consumers reads.
const MaxConsumerRecords = 10_000

// Consumers groups the secret's audit since since by version, and within a
// version by the grant's run and the caller's step: which loops and steps
// read which version, and when last. It reads at most MaxConsumerRecords
// records (newest first); truncated says whether older ones were left out.
func (s *Service) Consumers(ctx context.Context, project, ref string, since time.Time) (out []VersionConsumers, truncated bool, err error) {
	sec, err := s.lookup(ctx, project, ref)
	if err != nil {
		return nil, false, err
	}
	byVersion := map[int]*VersionConsumers{}
	before, read := "", 0
	for read < MaxConsumerRecords {
		page, more, err := s.ListResolutionsOf(ctx, project, sec.ID, before, MaxPageSize)
		if err != nil {
			return nil, false, err
		}
		done := false
		for _, r := range page {
			if r.ResolvedAt.Before(since) {
				done = true
				break
			}
			read++
			vc := byVersion[r.Version]
			if vc == nil {
				vc = &VersionConsumers{Version: r.Version}
				byVersion[r.Version] = vc
			}
			i := slices.IndexFunc(vc.Consumers, func(c Consumer) bool {
				return bytes.Equal(c.Run, r.Run) && bytes.Equal(c.Step, r.Step)
			})
			if i < 0 {
				vc.Consumers = append(vc.Consumers, Consumer{Run: r.Run, Step: r.Step, LastSeen: r.ResolvedAt})
				i = len(vc.Consumers) - 1
			}
			c := &vc.Consumers[i]
			c.Count++
			if r.GrantID != "" && !slices.Contains(c.GrantIDs, r.GrantID) && len(c.GrantIDs) < 10 {
				c.GrantIDs = append(c.GrantIDs, r.GrantID)
			}
		}
		if done || !more {
			break
		}
		before = page[len(page)-1].ID
		truncated = read >= MaxConsumerRecords
	}
	last, err := s.lastResolved(ctx, sec)
	if err != nil {
		return nil, false, err
	}
	versions, _, err := s.ListVersionsOf(ctx, sec, 0, MaxPageSize)
	if err != nil {
		return nil, false, err
	}
	for _, v := range versions {
		vc := byVersion[v.Number]
		if vc == nil {
			if _, ok := last[v.Number]; !ok {
				continue
			}
			vc = &VersionConsumers{Version: v.Number}
		}
		vc.State, vc.LastResolvedAt = v.State, last[v.Number]
		out = append(out, *vc)
	}
	return out, truncated, nil
}
