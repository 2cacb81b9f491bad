package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// Freezes live in the catalog beside the inventory, as a log per scope:
//
//	freezes/<environment|_>/<service|_>/<seq>.json   start or end of a freeze ("_": every one)
//
// Every rollout worker and every API and CLI reads the same bucket, entries
// are written once (create-if-not-exist, like channel moves), and the current
// state of a scope is its highest seq: durable without a workflow to keep
// alive, and readable by an activity in one list and a few small reads.

// FreezeEntry is one start or end of a freeze of one scope.
type FreezeEntry struct {
	contract.Freeze
	Seq   int64     `json:"seq"`
	Ended bool      `json:"ended,omitempty"` // an end: the scope is no longer frozen
	Time  time.Time `json:"time"`
}

const anyScope = "_"

func freezePrefix(service, environment string) string {
	s, e := service, environment
	if s == "" {
		s = anyScope
	}
	if e == "" {
		e = anyScope
	}
	return "freezes/" + e + "/" + s + "/"
}

func checkFreezeScope(service, environment string) error {
	if service != "" {
		if err := checkService(service); err != nil {
			return err
		}
	}
	if environment != "" && !serviceRE.MatchString(environment) {
		return fmt.Errorf("invalid environment name %q", environment)
	}
	return nil
}

// StartFreeze records a freeze of f's scope (replacing one in force there:
// the newer reason and until win).
func (c *Catalog) StartFreeze(ctx context.Context, f contract.Freeze) (FreezeEntry, error) {
	return c.appendFreeze(ctx, FreezeEntry{Freeze: f, Time: f.Since})
}

// EndFreeze ends the freeze of exactly this scope; ErrNotFound (wrapped) when
// none is in force there.
func (c *Catalog) EndFreeze(ctx context.Context, service, environment, by string, now time.Time) (FreezeEntry, error) {
	cur, err := c.freezeHead(ctx, service, environment)
	if err != nil {
		return FreezeEntry{}, err
	}
	if cur.Seq == 0 || cur.Ended || !cur.InForce(now) {
		return FreezeEntry{}, fmt.Errorf("no freeze of %s is in force %w; list them with: imago freeze list", contract.FreezeScope(service, environment), ErrNotFound)
	}
	end := cur
	end.Ended, end.By, end.Time = true, by, now
	return c.appendFreeze(ctx, end)
}

func (c *Catalog) appendFreeze(ctx context.Context, e FreezeEntry) (FreezeEntry, error) {
	if err := checkFreezeScope(e.Service, e.Environment); err != nil {
		return FreezeEntry{}, fmt.Errorf("freeze: %w", err)
	}
	prefix := freezePrefix(e.Service, e.Environment)
	cur, err := c.freezeHead(ctx, e.Service, e.Environment)
	if err != nil {
		return FreezeEntry{}, err
	}
	// Of concurrent writers one wins a seq and the next takes the one after:
	// the last written is the scope's state.
	_, err = c.appendSeq(ctx, prefix, cur.Seq, "freeze "+contract.FreezeScope(e.Service, e.Environment), "freeze changes",
		func(seq int64) any { e.Seq = seq; return e },
		func(int64) (bool, error) { return false, nil })
	return e, err
}

// freezeHead is the latest entry of a scope; Seq 0 when it never was frozen.
func (c *Catalog) freezeHead(ctx context.Context, service, environment string) (FreezeEntry, error) {
	prefix := freezePrefix(service, environment)
	seqs, err := c.seqsUnder(ctx, prefix)
	if err != nil || len(seqs) == 0 {
		return FreezeEntry{}, err
	}
	var e FreezeEntry
	if err := c.readJSON(ctx, seqKey(prefix, seqs[len(seqs)-1]), &e); err != nil {
		return FreezeEntry{}, fmt.Errorf("read freeze of %s: %w", contract.FreezeScope(service, environment), err)
	}
	return e, nil
}

// Freezes returns the freezes in force at now, every scope's, by scope.
func (c *Catalog) Freezes(ctx context.Context, now time.Time) ([]contract.Freeze, error) {
	keys, err := c.listKeys(ctx, "freezes/")
	if err != nil {
		return nil, err
	}
	latest := map[string]int64{} // scope prefix → highest seq
	for _, k := range keys {
		i := strings.LastIndex(k, "/")
		if n, ok := parseSeq(k[i+1:]); ok && n > latest[k[:i+1]] {
			latest[k[:i+1]] = n
		}
	}
	prefixes := sortedNamesOf(latest)
	heads := make([]FreezeEntry, len(prefixes))
	err = parallel(ctx, len(prefixes), func(ctx context.Context, i int) error {
		return c.readJSON(ctx, seqKey(prefixes[i], latest[prefixes[i]]), &heads[i])
	})
	if err != nil {
		return nil, fmt.Errorf("read freezes: %w", err)
	}
	return inForce(heads, now), nil
}

// FreezesCovering returns the freezes in force at now that hold a rollout of
// service to environment. Only four scopes can (the pair itself, the
// environment, the service, everything), so it reads those four heads: a
// rollout asks before provisioning and before each traffic change, and must
// not list every freeze ever recorded to do so.
func (c *Catalog) FreezesCovering(ctx context.Context, service, environment string, now time.Time) ([]contract.Freeze, error) {
	scopes := [][2]string{{service, environment}, {"", environment}, {service, ""}, {"", ""}}
	heads := make([]FreezeEntry, len(scopes))
	err := parallel(ctx, len(scopes), func(ctx context.Context, i int) (err error) {
		heads[i], err = c.freezeHead(ctx, scopes[i][0], scopes[i][1])
		return err
	})
	if err != nil {
		return nil, err
	}
	return inForce(heads, now), nil
}

// inForce are the freezes of heads (scope heads) in force at now, by scope.
func inForce(heads []FreezeEntry, now time.Time) []contract.Freeze {
	var out []contract.Freeze
	for _, h := range heads {
		if h.Seq > 0 && !h.Ended && h.InForce(now) {
			out = append(out, h.Freeze)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scope() < out[j].Scope() })
	return out
}

func sortedNamesOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
