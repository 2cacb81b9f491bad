package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"gocloud.dev/blob"

	"github.com/imago/imago/internal/atomicfile"
	"github.com/imago/imago/internal/contract"
)

// Drift checks (see workflows.Drift) keep their latest finding per service and
// environment, for imago status:
//
//	drift/<env>/<service>.json   the latest DriftTarget, replaced by each check
//
// Unlike every other object these are overwritten: a cache of the last check,
// not a record (the checks' histories are in Temporal).

func driftKey(service, env string) string { return "drift/" + env + "/" + service + ".json" }

// Deployed returns every service and environment the inventory has a
// deployment of (with its region, for deployments to one), sorted by
// environment (environment@region) then service.
func (c *Catalog) Deployed(ctx context.Context) ([]contract.RouteKey, error) {
	envs, err := c.listDirs(ctx, "inventory/")
	if err != nil {
		return nil, err
	}
	var out []contract.RouteKey
	for _, env := range envs {
		svcs, err := c.listDirs(ctx, "inventory/"+env+"/")
		if err != nil {
			return nil, err
		}
		for _, svc := range svcs {
			e, region := contract.SplitPlace(env)
			out = append(out, contract.RouteKey{Service: svc, Environment: e, Region: region})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if pi, pj := contract.Place(out[i].Environment, out[i].Region), contract.Place(out[j].Environment, out[j].Region); pi != pj {
			return pi < pj
		}
		return out[i].Service < out[j].Service
	})
	return out, nil
}

// RecordDrift stores t as the latest drift check of its service and environment.
func (c *Catalog) RecordDrift(ctx context.Context, t contract.DriftTarget) error {
	if err := checkTarget(t.Service, t.Environment); err != nil {
		return fmt.Errorf("record drift: %w", err)
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	key := driftKey(t.Service, t.Environment)
	if c.dir != "" && safeKey(key) { // file://: replaced atomically, 0600 in 0700 directories
		path := filepath.Join(c.dir, filepath.FromSlash(key))
		err = os.MkdirAll(filepath.Dir(path), 0o700)
		if err == nil {
			err = atomicfile.Write(path, data)
		}
	} else {
		err = c.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json"})
	}
	if err != nil {
		return fmt.Errorf("record drift of %s/%s: %w", t.Environment, t.Service, err)
	}
	return nil
}

// LastDrift returns the latest drift check of service in env, nil when none ran.
func (c *Catalog) LastDrift(ctx context.Context, service, env string) (*contract.DriftTarget, error) {
	if err := checkTarget(service, env); err != nil {
		return nil, err
	}
	var t contract.DriftTarget
	err := c.readJSON(ctx, driftKey(service, env), &t)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read drift of %s/%s: %w", env, service, err)
	}
	return &t, nil
}
