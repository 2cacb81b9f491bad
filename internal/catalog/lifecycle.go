package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"
)

// Lifecycle rules live as a log per service (lifecycle/<service>/<seq>.json,
// written once like channel moves; the current rule is the highest seq), and a
// sweep's marks beside the revocations: deprecations/<id>.json and
// tombstones/<id>.json.

func lifecyclePrefix(service string) string { return "lifecycle/" + service + "/" }
func deprecationKey(id string) string       { return "deprecations/" + id + ".json" }
func tombstoneKey(id string) string         { return "tombstones/" + id + ".json" }

// SetLifecycle records r as its service's lifecycle rule (replacing the one
// before) and returns it with its Seq.
func (c *Catalog) SetLifecycle(ctx context.Context, r contract.LifecycleRule) (contract.LifecycleRule, error) {
	if err := checkService(r.Service); err != nil {
		return r, fmt.Errorf("lifecycle rule: %w", err)
	}
	if err := r.Check(); err != nil {
		return r, fmt.Errorf("lifecycle rule of %s: %w", r.Service, err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	cur, err := c.Lifecycle(ctx, r.Service)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return r, err
	}
	_, err = c.appendSeq(ctx, lifecyclePrefix(r.Service), cur.Seq, "lifecycle rule of "+r.Service, "rule changes",
		func(seq int64) any { r.Seq = seq; return r },
		func(int64) (bool, error) { return false, nil })
	return r, err
}

// Lifecycle returns the lifecycle rule of service; ErrNotFound (wrapped) when it has none.
func (c *Catalog) Lifecycle(ctx context.Context, service string) (contract.LifecycleRule, error) {
	if err := checkService(service); err != nil {
		return contract.LifecycleRule{}, fmt.Errorf("lifecycle rule: %w", err)
	}
	prefix := lifecyclePrefix(service)
	seqs, err := c.seqsUnder(ctx, prefix)
	if err != nil {
		return contract.LifecycleRule{}, err
	}
	if len(seqs) == 0 {
		return contract.LifecycleRule{}, fmt.Errorf("service %s has no lifecycle rule %w; set one with: imago image lifecycle set --service %s --keep-last N --deprecate-after D", service, ErrNotFound, service)
	}
	var r contract.LifecycleRule
	if err := c.readJSON(ctx, seqKey(prefix, seqs[len(seqs)-1]), &r); err != nil {
		return r, fmt.Errorf("read lifecycle rule of %s: %w", service, err)
	}
	return r, nil
}

// LifecycleRules returns the lifecycle rule of every service that has one, by service.
func (c *Catalog) LifecycleRules(ctx context.Context) ([]contract.LifecycleRule, error) {
	services, err := c.listDirs(ctx, "lifecycle/")
	if err != nil {
		return nil, err
	}
	sort.Strings(services)
	out := make([]contract.LifecycleRule, len(services))
	err = parallel(ctx, len(services), func(ctx context.Context, i int) (err error) {
		out[i], err = c.Lifecycle(ctx, services[i])
		return err
	})
	return out, err
}

func (c *Catalog) deprecation(ctx context.Context, id string) (*contract.Deprecation, error) {
	return readMark[contract.Deprecation](ctx, c, deprecationKey(id), "deprecation of image "+id)
}

func (c *Catalog) tombstone(ctx context.Context, id string) (*contract.Tombstone, error) {
	return readMark[contract.Tombstone](ctx, c, tombstoneKey(id), "tombstone of image "+id)
}

func readMark[M any](ctx context.Context, c *Catalog, key, what string) (*M, error) {
	var m M
	err := c.readJSON(ctx, key, &m)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return &m, nil
}

type lifecycleMarks struct {
	deprecated map[string]*contract.Deprecation
	deleted    map[string]*contract.Tombstone
}

func (c *Catalog) lifecycleMarks(ctx context.Context) (lifecycleMarks, error) {
	var m lifecycleMarks
	var err error
	if m.deprecated, err = readMarks(ctx, c, "deprecations/", c.deprecation); err != nil {
		return m, err
	}
	m.deleted, err = readMarks(ctx, c, "tombstones/", c.tombstone)
	return m, err
}

// Deprecate marks image id deprecated by rule. Marking it again keeps the first mark.
func (c *Catalog) Deprecate(ctx context.Context, id, rule string, now time.Time) error {
	if _, err := c.record(ctx, id); err != nil {
		return err
	}
	err := c.create(ctx, deprecationKey(id), contract.Deprecation{ImageID: id, Rule: rule, Time: now.UTC()})
	if err != nil && !isExists(err) {
		return fmt.Errorf("deprecate image %s: %w", id, err)
	}
	return nil
}

// DeleteImage deletes image id for rule: it writes the tombstone first (so a
// crash half way leaves a deleted image, never an image whose archive is
// missing without a word), then removes its SBOM, its provenance and its archive (unless
// another image that is not deleted shares the archive). The record stays, for
// the audit. Deleting again finishes what a crash left.
func (c *Catalog) DeleteImage(ctx context.Context, id, rule string, now time.Time) error {
	img, err := c.record(ctx, id)
	if err != nil {
		return err
	}
	err = c.create(ctx, tombstoneKey(id), contract.Tombstone{ImageID: id, Rule: rule, Time: now.UTC()})
	if err != nil && !isExists(err) {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	if err := c.deleteKey(ctx, sbomKey(id)); err != nil {
		return fmt.Errorf("delete SBOM of image %s: %w", id, err)
	}
	if err := c.deleteKey(ctx, provenanceKey(id)); err != nil {
		return fmt.Errorf("delete provenance of image %s: %w", id, err)
	}
	if img.Archive == "" {
		return nil
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.ID != id && o.Archive == img.Archive && o.Deleted == nil {
			return nil // the same tree under another service or entrypoint: its archive stays
		}
	}
	if err := c.deleteKey(ctx, img.Archive); err != nil {
		return fmt.Errorf("delete archive of image %s: %w", id, err)
	}
	return nil
}

func (c *Catalog) deleteKey(ctx context.Context, key string) error {
	if err := c.bucket.Delete(ctx, key); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// PlanLifecycle decides, for every image of every service with a lifecycle
// rule, what a sweep at now does to it, and why. It never changes anything.
// An image is kept when it is live in some environment, within the rollback
// retain of one (the retain of the live deployment's spec, defaultRetain when
// it names none), on a channel, an ancestor of any of those, or among its
// service's newest KeepLast; otherwise it is deleted when older than
// DeleteAfter and deprecated when older than DeprecateAfter. Deleted images are
// left out; so are images already deprecated that the rule does not delete.
// Decisions come by service, newest image first.
func (c *Catalog) PlanLifecycle(ctx context.Context, now time.Time, defaultRetain int) ([]contract.LifecycleDecision, error) {
	rules, err := c.LifecycleRules(ctx)
	if err != nil || len(rules) == 0 {
		return nil, err
	}
	all, err := c.List(ctx, "")
	if err != nil {
		return nil, err
	}
	kept, err := c.protected(ctx, all, defaultRetain)
	if err != nil {
		return nil, err
	}
	var out []contract.LifecycleDecision
	for _, r := range rules {
		newest := 0
		for _, img := range all { // newest first
			if img.Service != r.Service || img.Deleted != nil {
				continue
			}
			newest++
			d := contract.LifecycleDecision{ImageID: img.ID, Service: img.Service, Created: img.Created, Action: contract.LifecycleKeep, Rule: r.Name()}
			age := now.Sub(img.Created)
			switch {
			case kept[img.ID] != "":
				d.Why = kept[img.ID]
			case newest <= r.KeepLast:
				d.Why = fmt.Sprintf("among the newest %d", r.KeepLast)
			case r.DeleteAfter > 0 && age >= r.DeleteAfter.D():
				d.Action, d.Why = contract.LifecycleDelete, "older than "+r.DeleteAfter.String()
			case img.Deprecated != nil:
				continue // deprecated before; nothing to do
			case r.DeprecateAfter > 0 && age >= r.DeprecateAfter.D():
				d.Action, d.Why = contract.LifecycleDeprecate, "older than "+r.DeprecateAfter.String()
			default:
				d.Why = "younger than " + youngest(r).String()
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// youngest is the shortest age a rule acts on.
func youngest(r contract.LifecycleRule) time.Duration {
	if r.DeprecateAfter > 0 {
		return r.DeprecateAfter.D()
	}
	return r.DeleteAfter.D()
}

// protected returns, by image ID, why a lifecycle sweep must not touch an
// image: live, retained for rollback, on a channel, or the ancestor of one of
// those. all is every image in the catalog.
func (c *Catalog) protected(ctx context.Context, all []contract.Image, defaultRetain int) (map[string]string, error) {
	why := map[string]string{}
	keep := func(id, reason string) {
		if why[id] == "" {
			why[id] = reason
		}
	}
	services := map[string]bool{}
	for _, img := range all {
		services[img.Service] = true
	}
	for _, s := range sortedNamesOf(services) {
		envs, err := c.Environments(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, env := range envs {
			live, err := c.Live(ctx, s, env)
			if err == nil {
				keep(live.ImageID, "live in "+env)
			} else if !errors.Is(err, ErrNotFound) { // deployed, but nothing live now
				return nil, err
			}
			retain := retainOf(live.Spec, defaultRetain)
			ids, err := c.Deployable(ctx, s, env, retain)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				keep(id, fmt.Sprintf("within the rollback retain (%d) of %s", retain, env))
			}
		}
		chans, err := c.Channels(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, ch := range chans {
			keep(ch.ImageID, "on channel "+ch.Channel)
		}
	}
	parent := map[string]string{}
	for _, img := range all {
		parent[img.ID] = img.Parent
	}
	for _, id := range sortedNamesOf(why) {
		reason := why[id]
		for p := parent[id]; p != ""; p = parent[p] {
			if why[p] != "" && !strings.HasPrefix(why[p], "base of ") {
				break // protected in its own right (its ancestors are walked from it)
			}
			keep(p, "base of "+id+" ("+reason+")")
		}
	}
	return why, nil
}

// retainOf reads the retain of a deployed rollout spec (JSON of spec.Rollout).
func retainOf(specJSON json.RawMessage, def int) int {
	var s struct {
		Retain int `json:"retain"`
	}
	if len(specJSON) > 0 && json.Unmarshal(specJSON, &s) == nil && s.Retain > 0 {
		return s.Retain
	}
	return def
}
