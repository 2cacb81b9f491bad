package catalog

import (
	"context"
	"fmt"
	"slices"

	"github.com/imago/imago/internal/contract"
)

// Timings live beside the inventory, one object per measurement, written
// once (create-if-not-exist) and never changed:
//
//	timings/<service>/<environment>/<measured, unix ns, 20 digits>-<image>.json
//
// A rollout's health wait records one (activities.WaitHealthy); `imago plan`
// reads the newest to assume the next rollout's provision and boot times.

func timingPrefix(service, env string) string { return "timings/" + service + "/" + env + "/" }

// maxTimings is how many of the newest measurements Timings reads.
const maxTimings = 20

// RecordTiming stores one measurement.
func (c *Catalog) RecordTiming(ctx context.Context, t contract.Timing) error {
	if err := checkTarget(t.Service, t.Environment); err != nil {
		return err
	}
	if t.ImageID == "" || t.Measured.IsZero() {
		return fmt.Errorf("timing of %s/%s: want an image and a time", t.Environment, t.Service)
	}
	key := fmt.Sprintf("%s%020d-%s.json", timingPrefix(t.Service, t.Environment), t.Measured.UnixNano(), t.ImageID)
	err := c.create(ctx, key, t)
	if isExists(err) {
		return nil // the same measurement, recorded by a retried attempt
	}
	return err
}

// Timings returns the newest measurements of service in env, newest first
// (at most 20); none is no error.
func (c *Catalog) Timings(ctx context.Context, service, env string) ([]contract.Timing, error) {
	if err := checkTarget(service, env); err != nil {
		return nil, err
	}
	keys, err := c.listKeys(ctx, timingPrefix(service, env))
	if err != nil {
		return nil, err
	}
	slices.Reverse(keys)
	keys = keys[:min(len(keys), maxTimings)]
	out := make([]contract.Timing, len(keys))
	if err := parallel(ctx, len(keys), func(ctx context.Context, i int) error {
		return c.readJSON(ctx, keys[i], &out[i])
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// TimingOf picks from ts (newest first) the newest measurement of imageID,
// else the newest of any image; ok is false when there is none.
func TimingOf(ts []contract.Timing, imageID string) (t contract.Timing, ok bool) {
	for _, x := range ts {
		if x.ImageID == imageID {
			return x, true
		}
	}
	if len(ts) > 0 {
		return ts[0], true
	}
	return t, false
}
