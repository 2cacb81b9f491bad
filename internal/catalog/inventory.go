package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/imago/imago/internal/contract"

	"gocloud.dev/blob"
)

// The inventory says, for each service and environment, which image is live,
// since when, through which rollout and started by whom, and keeps the history of
// every rollout and rollback that finished. Like a channel it is a numbered log:
// every finished deployment is its own immutable object
//
//	inventory/<env>/<service>/<seq>.json     seq zero-padded, 1, 2, 3, ... without gaps
//
// claimed with create-if-not-exist (see appendSeq), so concurrent records never
// overwrite each other and the history is the objects in seq order.
//
// The live image is the one of the newest entry whose outcome is succeeded,
// unless a later entry of the same run says rolled-back (the run's cutover was
// undone; the image live before it serves again).

// ErrInvalidDeployment is returned (wrapped) by the inventory's methods for input
// they refuse: a bad service, environment or image name, action, outcome or keep.
// Retrying such a call cannot succeed.
var ErrInvalidDeployment = errors.New("invalid deployment")

// sameEvent reports whether e records the same event as d: the same run with the
// same outcome (a retried activity recording again).
func sameEvent(d, e contract.Deployment) bool {
	return d.RunID != "" && e.RunID == d.RunID && e.Outcome == d.Outcome
}

// idempotencyWindow is how many of the newest entries RecordDeployment searches
// for an earlier record of the same run and outcome. One rollout per service and
// environment runs at a time, so a retry finds its first attempt's entry at or
// next to the head.
const idempotencyWindow = 32

func inventoryPrefix(service, env string) string {
	return "inventory/" + env + "/" + service + "/"
}

// checkEnvironment checks an environment or a deployment place
// (contract.Place: environment@region).
func checkEnvironment(place string) error {
	env, region := contract.SplitPlace(place)
	if env == "" {
		return fmt.Errorf("an environment is required (-e ENV, e.g. -e prod)")
	}
	if strings.Contains(place, contract.PlaceSep) && !serviceRE.MatchString(region) {
		return fmt.Errorf("invalid region %q in %q: use letters, digits, '.', '_' and '-' (at most 128 characters)", region, place)
	}
	if !serviceRE.MatchString(env) {
		return fmt.Errorf("invalid environment name %q: use letters, digits, '.', '_' and '-' (at most 128 characters)", env)
	}
	return nil
}

func checkTarget(service, env string) error {
	err := checkService(service)
	if err == nil {
		err = checkEnvironment(env)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidDeployment, err)
	}
	return nil
}

// checkDeployment validates d and fills its defaults (action rollout, UTC times, a finish
// time of now).
func checkDeployment(d *contract.Deployment) error {
	if err := checkTarget(d.Service, d.Environment); err != nil {
		return err
	}
	if strings.Contains(d.Environment, contract.PlaceSep) {
		return fmt.Errorf("%w: environment %q: name the region in region", ErrInvalidDeployment, d.Environment)
	}
	if d.Region != "" && !serviceRE.MatchString(d.Region) {
		return fmt.Errorf("%w: region %q: use letters, digits, '.', '_' and '-'", ErrInvalidDeployment, d.Region)
	}
	if !idRE.MatchString(d.ImageID) {
		return fmt.Errorf("%w: image ID %q: image IDs look like img-0123456789ab", ErrInvalidDeployment, d.ImageID)
	}
	switch d.Action {
	case "":
		d.Action = contract.ActionRollout
	case contract.ActionRollout, contract.ActionRollback:
	default:
		return fmt.Errorf("%w: action %q: want %s or %s", ErrInvalidDeployment, d.Action, contract.ActionRollout, contract.ActionRollback)
	}
	switch d.Outcome {
	case contract.OutcomeSucceeded, contract.OutcomeFailed, contract.OutcomeAborted, contract.OutcomeRolledBack, contract.OutcomeCanceled:
	default:
		return fmt.Errorf("%w: outcome %q: want %s, %s, %s, %s or %s", ErrInvalidDeployment, d.Outcome,
			contract.OutcomeSucceeded, contract.OutcomeFailed, contract.OutcomeAborted, contract.OutcomeRolledBack, contract.OutcomeCanceled)
	}
	if d.Previous != "" && !idRE.MatchString(d.Previous) {
		return fmt.Errorf("%w: previous image ID %q: image IDs look like img-0123456789ab", ErrInvalidDeployment, d.Previous)
	}
	if d.Finished.IsZero() {
		d.Finished = time.Now()
	}
	d.Started, d.Finished = d.Started.UTC(), d.Finished.UTC()
	return nil
}

func neverDeployed(service, env string) error {
	return fmt.Errorf("no deployment of %s to %s %w in the inventory; deploy it with: imago rollout start -f FILE (a spec with service: %s, environment: %s)",
		service, env, ErrNotFound, service, env)
}

// liveness tells, walking an inventory newest first, which entries made their
// image live: succeeded ones whose run did not roll back later.
type liveness struct{ undone map[string]bool }

func (l *liveness) live(d contract.Deployment) bool {
	switch d.Outcome {
	case contract.OutcomeRolledBack:
		if d.RunID != "" {
			if l.undone == nil {
				l.undone = map[string]bool{}
			}
			l.undone[d.RunID] = true
		}
	case contract.OutcomeSucceeded:
		return d.RunID == "" || !l.undone[d.RunID]
	}
	return false
}

// RecordDeployment appends d to the inventory of d.Service in d.Environment and
// returns it as stored, with Seq set, Action defaulted to rollout, Finished to
// now and Previous, when empty, to the image live before it.
//
// It is idempotent for a run: when one of the newest entries already records
// d.RunID with d.Outcome (a retried activity whose first attempt got through),
// that entry is returned and nothing is added. Records without a RunID are
// always added. Concurrent records never overwrite each other.
func (c *Catalog) RecordDeployment(ctx context.Context, d contract.Deployment) (contract.Deployment, error) {
	if err := checkDeployment(&d); err != nil {
		return contract.Deployment{}, fmt.Errorf("record deployment: %w", err)
	}
	place := contract.Place(d.Environment, d.Region)
	what := fmt.Sprintf("record deployment of %s to %s", d.Service, place)
	prefix := inventoryPrefix(d.Service, place)
	seqs, err := c.seqsUnder(ctx, prefix)
	if err != nil {
		return contract.Deployment{}, fmt.Errorf("%s: %w", what, err)
	}
	// One newest-first walk finds an earlier record of this run (within the
	// window) and the image live now.
	fillPrevious := d.Previous == ""
	needLive := fillPrevious
	var (
		earlier *contract.Deployment
		l       liveness
		n       int
	)
	err = c.walkNewest(ctx, prefix, seqs, func(e contract.Deployment) (bool, error) {
		n++
		if n <= idempotencyWindow && sameEvent(d, e) {
			earlier = &e
			return false, nil
		}
		if needLive && l.live(e) {
			d.Previous, needLive = e.ImageID, false
		}
		return needLive || (d.RunID != "" && n < idempotencyWindow), nil
	})
	if err != nil {
		return contract.Deployment{}, fmt.Errorf("%s: %w", what, err)
	}
	if earlier != nil {
		return *earlier, nil
	}
	var head int64
	if len(seqs) > 0 {
		head = seqs[len(seqs)-1]
	}
	var stored *contract.Deployment
	seq, err := c.appendSeq(ctx, prefix, head, what, "writers",
		func(seq int64) any {
			d.Seq = seq
			return d
		},
		func(seq int64) (bool, error) {
			// A concurrent record took seq: it may be this very record (a
			// retry racing its first attempt), and it may change what is live.
			e, err := c.deployment(ctx, prefix, seq)
			if err != nil {
				return false, fmt.Errorf("%s: %w", what, err)
			}
			if sameEvent(d, e) {
				stored = &e
				return true, nil
			}
			if fillPrevious {
				switch e.Outcome {
				case contract.OutcomeSucceeded:
					d.Previous = e.ImageID
				case contract.OutcomeRolledBack:
					live, err := c.live(ctx, d.Service, place)
					if err != nil && !errors.Is(err, ErrNotFound) {
						return false, fmt.Errorf("%s: %w", what, err)
					}
					d.Previous = live.ImageID
				}
			}
			return false, nil
		})
	if err != nil {
		return contract.Deployment{}, err
	}
	if stored != nil {
		return *stored, nil
	}
	d.Seq = seq
	return d, nil
}

// Live returns the deployment that made the live image of service in env: the
// newest succeeded entry not rolled back later. A service never (successfully)
// deployed there gives an error matching ErrNotFound that says how to deploy it.
func (c *Catalog) Live(ctx context.Context, service, env string) (contract.Deployment, error) {
	if err := checkTarget(service, env); err != nil {
		return contract.Deployment{}, err
	}
	return c.live(ctx, service, env)
}

func (c *Catalog) live(ctx context.Context, service, env string) (contract.Deployment, error) {
	prefix := inventoryPrefix(service, env)
	seqs, err := c.seqsUnder(ctx, prefix)
	if err != nil {
		return contract.Deployment{}, err
	}
	if len(seqs) == 0 {
		return contract.Deployment{}, neverDeployed(service, env)
	}
	var (
		found *contract.Deployment
		l     liveness
		last  contract.Outcome
	)
	err = c.walkNewest(ctx, prefix, seqs, func(e contract.Deployment) (bool, error) {
		if last == "" {
			last = e.Outcome
		}
		if l.live(e) {
			found = &e
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return contract.Deployment{}, err
	}
	if found == nil {
		return contract.Deployment{}, fmt.Errorf("no successful deployment of %s to %s %w in the inventory (%d recorded, the last %s; see them with: imago status %s -e %s --history 10); deploy it with: imago rollout start -f FILE",
			service, env, ErrNotFound, len(seqs), last, service, env)
	}
	return *found, nil
}

// History returns the deployments of service to env, newest first: the newest
// limit of them, or all for limit <= 0. A service never deployed there gives an
// error matching ErrNotFound that says how to deploy it.
func (c *Catalog) History(ctx context.Context, service, env string, limit int) ([]contract.Deployment, error) {
	prefix, seqs, err := c.inventoryLog(ctx, service, env)
	if err != nil {
		return nil, err
	}
	if len(seqs) == 0 {
		return nil, neverDeployed(service, env)
	}
	if limit > 0 && limit < len(seqs) {
		seqs = seqs[len(seqs)-limit:]
	}
	out := make([]contract.Deployment, 0, len(seqs))
	err = c.walkNewest(ctx, prefix, seqs, func(e contract.Deployment) (bool, error) {
		out = append(out, e)
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Environments returns the environments service has deployments in, sorted. A
// service never deployed has none (and no error).
func (c *Catalog) Environments(ctx context.Context, service string) ([]string, error) {
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("list environments: %w: %w", ErrInvalidDeployment, err)
	}
	envs, err := c.listDirs(ctx, "inventory/")
	if err != nil {
		return nil, err
	}
	has := make([]bool, len(envs))
	err = parallel(ctx, len(envs), func(ctx context.Context, i int) error {
		var err error
		has[i], err = c.hasSeq(ctx, inventoryPrefix(service, envs[i]))
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for i, env := range envs {
		if has[i] {
			out = append(out, env)
		}
	}
	sort.Strings(out)
	return out, nil
}

// ErrNoPrevious is returned (wrapped) by Previous when nothing deployable is
// left to roll back to.
var ErrNoPrevious = errors.New("no previous deployable image")

// Previous returns the image a rollback after decommission rolls out (to) and
// the live image it replaces (from): the newest deployable image of service in
// env (see Deployable: deployed successfully, not rolled back, not revoked,
// still in the catalog) other than the live one. With none, the error matches
// ErrNoPrevious; a service with no live image there gives Live's error.
func (c *Catalog) Previous(ctx context.Context, service, env string) (from, to string, err error) {
	live, err := c.Live(ctx, service, env)
	if err != nil {
		return "", "", err
	}
	// The answer is among the two newest deployable images: the live one is at most one of them.
	ids, err := c.Deployable(ctx, service, env, 2)
	if err != nil {
		return live.ImageID, "", err
	}
	for _, id := range ids {
		if id != live.ImageID {
			return live.ImageID, id, nil
		}
	}
	return live.ImageID, "", fmt.Errorf("%w of %s in %s (live: %s); see imago status %s -e %s --history 10",
		ErrNoPrevious, service, env, live.ImageID, service, env)
}

// Deployable returns the images service may roll back to in env, newest first:
// the last keep distinct images that were deployed successfully (and not rolled
// back), skipping revoked images and images no longer in the catalog; all of
// them for keep <= 0. The live image, when usable, comes first. A service never
// deployed there has none (and no error).
func (c *Catalog) Deployable(ctx context.Context, service, env string, keep int) ([]string, error) {
	prefix, seqs, err := c.inventoryLog(ctx, service, env)
	if err != nil {
		return nil, err
	}
	var (
		out  []string
		seen = map[string]bool{}
		l    liveness
	)
	err = c.walkNewest(ctx, prefix, seqs, func(e contract.Deployment) (bool, error) {
		if !l.live(e) || seen[e.ImageID] {
			return true, nil
		}
		seen[e.ImageID] = true
		ok, err := c.deployable(ctx, service, e.ImageID)
		if err != nil {
			return false, err
		}
		if ok {
			out = append(out, e.ImageID)
		}
		return keep <= 0 || len(out) < keep, nil
	})
	if err != nil {
		return nil, fmt.Errorf("deployable images of %s in %s: %w", service, env, err)
	}
	return out, nil
}

// deployable reports whether image id of service is in the catalog and not revoked.
func (c *Catalog) deployable(ctx context.Context, service, id string) (bool, error) {
	img, err := c.record(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if img.Service != service {
		return false, nil
	}
	rev, err := c.revocation(ctx, id)
	return rev == nil, err
}

// inventoryLog checks service and env and lists the seqs of their inventory log,
// which is at prefix.
func (c *Catalog) inventoryLog(ctx context.Context, service, env string) (prefix string, seqs []int64, err error) {
	if err := checkTarget(service, env); err != nil {
		return "", nil, err
	}
	prefix = inventoryPrefix(service, env)
	seqs, err = c.seqsUnder(ctx, prefix)
	return prefix, seqs, err
}

// deployment reads entry seq of the inventory log at prefix.
func (c *Catalog) deployment(ctx context.Context, prefix string, seq int64) (contract.Deployment, error) {
	var d contract.Deployment
	if err := c.readJSON(ctx, seqKey(prefix, seq), &d); err != nil {
		return contract.Deployment{}, fmt.Errorf("read %s: %w", seqKey(prefix, seq), err)
	}
	return d, nil
}

// walkNewest reads the inventory entries seqs (ascending) of the log at prefix
// newest first, a batch at a time in parallel, and calls fn with each until fn
// returns false or an error. Entries deleted behind its back are skipped.
func (c *Catalog) walkNewest(ctx context.Context, prefix string, seqs []int64, fn func(contract.Deployment) (bool, error)) error {
	const batch = 16
	for end := len(seqs); end > 0; end -= batch {
		part := seqs[max(0, end-batch):end]
		ds := make([]contract.Deployment, len(part))
		err := parallel(ctx, len(part), func(ctx context.Context, i int) error {
			var err error
			ds[i], err = c.deployment(ctx, prefix, part[i])
			if isNotFound(err) {
				err = nil
			}
			return err
		})
		if err != nil {
			return err
		}
		for i := len(ds) - 1; i >= 0; i-- {
			if ds[i].Seq == 0 {
				continue // deleted
			}
			more, err := fn(ds[i])
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}

// Numbered logs: channels and the inventory are both logs of create-only entries
// <prefix><seq>.json, seq zero-padded to seqDigits and starting at 1. The helpers
// below are the log mechanism without knowledge of what an entry holds.

// seqKey is the key of entry seq of the log at prefix.
func seqKey(prefix string, seq int64) string {
	return fmt.Sprintf("%s%0*d.json", prefix, seqDigits, seq)
}

// seqsUnder lists the seqs of the log at prefix, ascending.
func (c *Catalog) seqsUnder(ctx context.Context, prefix string) ([]int64, error) {
	keys, err := c.listKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	for _, k := range keys {
		if n, ok := parseSeq(strings.TrimPrefix(k, prefix)); ok {
			seqs = append(seqs, n)
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// hasSeq reports whether the log at prefix has an entry.
func (c *Catalog) hasSeq(ctx context.Context, prefix string) (bool, error) {
	it := c.bucket.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("list catalog %s: %w", prefix, err)
		}
		if _, ok := parseSeq(strings.TrimPrefix(obj.Key, prefix)); ok && !obj.IsDir {
			return true, nil
		}
	}
}

// appendSeq appends an entry to the log at prefix whose highest seq the caller
// saw is head, and returns the seq it claimed. entry(seq) gives the entry to
// write at seq. Of concurrent appends that pick the same seq one wins; each loser
// calls taken(seq), which reads the winner's entry and updates what entry will
// return next, then tries the next seq, so no append is ever lost. taken may
// also end the append (done, with the seq it saw): the winner already recorded
// what the caller meant to. what names the operation in errors, writers the
// contenders in the one that gives up ("concurrent moves"); taken's errors are
// returned as they are.
func (c *Catalog) appendSeq(ctx context.Context, prefix string, head int64, what, writers string,
	entry func(seq int64) any, taken func(seq int64) (done bool, err error)) (int64, error) {
	const maxAttempts = 1000
	for attempt := 1; ; attempt++ {
		seq := head + 1
		err := c.create(ctx, seqKey(prefix, seq), entry(seq))
		if err == nil {
			return seq, nil
		}
		if !isExists(err) {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		if attempt == maxAttempts {
			return 0, fmt.Errorf("%s: gave up after %d concurrent %s got in first; try again", what, attempt, writers)
		}
		done, err := taken(seq)
		if err != nil {
			return 0, err
		}
		if done {
			return seq, nil
		}
		head = seq
		// A short random pause keeps the contenders from colliding again in lockstep.
		select {
		case <-time.After(rand.N(time.Duration(min(attempt, 20)) * time.Millisecond)):
		case <-ctx.Done():
			return 0, fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// listDirs returns the names of the "directories" right under prefix that are
// valid service or environment names.
func (c *Catalog) listDirs(ctx context.Context, prefix string) ([]string, error) {
	var names []string
	it := c.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list catalog %s: %w", prefix, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
		if obj.IsDir && checkEnvironment(name) == nil { // a name, or a place (environment@region)
			names = append(names, name)
		}
	}
}
