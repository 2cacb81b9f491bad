package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/spec"
)

// ErrCampaignTarget is the error type of a campaign target that cannot be
// rolled (no rollout spec recorded, an override the spec refuses): retrying
// cannot help; the campaign counts it as a failed rollout.
const ErrCampaignTarget = "CampaignTarget"

// CampaignPlan resolves what a campaign rolls: each service's image (what its
// channel names now) and the environments, of the rings', where the service is
// deployed. A channel that does not exist or names a revoked image fails the
// campaign before anything starts.
func (a *Activities) CampaignPlan(ctx context.Context, in contract.CampaignPlanInput) (contract.CampaignPlanResult, error) {
	out := contract.CampaignPlanResult{Services: in.Services, Images: map[string]string{}, Deployed: map[string][]string{}, Live: map[string]string{}}
	if in.Select != nil {
		svcs, err := a.selectServices(ctx, *in.Select)
		if err != nil {
			return out, err
		}
		out.Services = svcs
	}
	if in.Rebuild {
		if in.Select == nil || in.Select.Base == nil {
			return out, temporal.NewNonRetryableApplicationError("a rebuild needs select.base", ErrCampaignTarget, nil)
		}
		bakes, err := a.rebuilds(ctx, *in.Select.Base, out.Services)
		if err != nil {
			return out, err
		}
		out.Bakes = bakes
	}
	for _, svc := range out.Services {
		if err := a.deployed(ctx, svc, in.Environments, &out); err != nil {
			return out, err
		}
		if in.Rebuild {
			continue // its image is what its bake makes
		}
		img, err := a.resolveRef(ctx, svc, contract.ImageRef{Channel: in.Image.Channel})
		var app *temporal.ApplicationError
		if errors.As(err, &app) && app.NonRetryable() { // no such channel or image: retrying cannot help
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("service %s, channel %s: %s", svc, in.Image.Channel, app.Message()), app.Type(), nil)
		}
		if err != nil {
			return out, fmt.Errorf("service %s, channel %s: %w", svc, in.Image.Channel, err)
		}
		if err := img.Usable(); err != nil {
			return out, temporal.NewNonRetryableApplicationError(fmt.Sprintf("service %s, channel %s: %v", svc, in.Image.Channel, err), contract.ErrImageRevoked, nil)
		}
		out.Images[svc] = img.ID
	}
	return out, nil
}

// deployed records, of envs, where svc has a live deployment and its image.
func (a *Activities) deployed(ctx context.Context, svc string, envs []string, out *contract.CampaignPlanResult) error {
	for _, env := range envs {
		d, err := a.Catalog.Live(ctx, svc, env)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			continue
		case err != nil:
			return inventoryError(err)
		}
		out.Deployed[svc] = append(out.Deployed[svc], env)
		out.Live[svc+"/"+env] = d.ImageID
	}
	return nil
}

// selectServices lists, sorted, the services sel selects: built on its base,
// with its labels, or both.
func (a *Activities) selectServices(ctx context.Context, sel contract.CampaignSelect) ([]string, error) {
	var svcs []string
	if sel.Base != nil {
		var err error
		if svcs, err = a.builtOn(ctx, *sel.Base); err != nil || len(sel.Labels) == 0 {
			return svcs, err
		}
	}
	labeled, err := a.labeled(ctx, sel.Labels)
	if err != nil {
		return nil, err
	}
	if sel.Base != nil {
		labeled = slices.DeleteFunc(labeled, func(s string) bool { return !slices.Contains(svcs, s) })
	}
	if len(labeled) == 0 {
		return nil, temporal.NewNonRetryableApplicationError("select: no "+sel.String(), ErrCampaignTarget, nil)
	}
	return labeled, nil
}

// labeled lists, sorted, the services whose newest image carries every label.
func (a *Activities) labeled(ctx context.Context, labels map[string]string) ([]string, error) {
	imgs, err := a.Catalog.List(ctx, "")
	if err != nil {
		return nil, err
	}
	seen, match := map[string]bool{}, map[string]bool{}
	for _, img := range imgs { // newest first: a service's first image is its newest
		if seen[img.Service] {
			continue
		}
		seen[img.Service] = true
		match[img.Service] = true
		for k, v := range labels {
			if img.Labels[k] != v {
				delete(match, img.Service)
			}
		}
	}
	return slices.Sorted(maps.Keys(match)), nil
}

// builtOn lists, sorted, the services with an image built (directly or not) on
// an image base's channel ever named: the services a new base must reach.
func (a *Activities) builtOn(ctx context.Context, base contract.ImageRef) ([]string, error) {
	desc, err := a.builtOnImages(ctx, base)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, img := range desc {
		seen[img.Service] = true
	}
	if len(seen) == 0 {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("select: no service has an image built on %s/%s", base.Service, base.Channel), ErrCampaignTarget, nil)
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// builtOnImages lists, by ID, the images of other services built (directly or
// not) on an image base's channel ever named.
func (a *Activities) builtOnImages(ctx context.Context, base contract.ImageRef) (map[string]contract.Image, error) {
	hist, err := a.Catalog.ChannelHistory(ctx, base.Service, base.Channel)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("select: base channel %s/%s: %v", base.Service, base.Channel, err), contract.ErrImageNotFound, nil)
	}
	if err != nil {
		return nil, err
	}
	out := map[string]contract.Image{}
	for _, e := range hist {
		desc, err := a.Catalog.Descendants(ctx, e.ImageID)
		if errors.Is(err, catalog.ErrNotFound) {
			continue // an image gone from the catalog
		}
		if err != nil {
			return nil, err
		}
		for _, img := range desc {
			if img.Service != base.Service {
				out[img.ID] = img
			}
		}
	}
	return out, nil
}

// rebuilds is how a campaign rebuilds each of svcs on base: the bake spec of
// its newest image built on the base, at the level of that image below the
// base (a service built on another one the campaign rebuilds bakes after it).
// A service built directly on the base gets the base's channel as its base;
// one pinned to an image ID of a rebuilt service gets that service's channel.
func (a *Activities) rebuilds(ctx context.Context, base contract.ImageRef, svcs []string) ([]contract.CampaignBakePlan, error) {
	desc, err := a.builtOnImages(ctx, base)
	if err != nil {
		return nil, err
	}
	level := func(img contract.Image) int {
		n := 1
		for p, ok := desc[img.Parent]; ok && n <= len(desc); p, ok = desc[p.Parent] {
			n++
		}
		return n
	}
	newest := slices.SortedFunc(maps.Values(desc), func(x, y contract.Image) int { return y.Created.Compare(x.Created) })
	plans := map[string]*contract.CampaignBakePlan{}
	parent := map[string]contract.Image{} // service → the image its spec's image was built on
	for _, svc := range svcs {
		p := &contract.CampaignBakePlan{Service: svc, Error: "no image of " + svc + " built on " + base.Service + "/" + base.Channel + " has a bake spec (imported, or baked before imago kept bake specs); bake it once with: imago bake -f FILE"}
		plans[svc] = p
		for _, img := range newest {
			if img.Service != svc {
				continue
			}
			b, err := a.Catalog.BakeSpec(ctx, img.ID)
			if errors.Is(err, catalog.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			p.Spec, p.Level, p.Error = &b, level(img), ""
			parent[svc] = desc[img.Parent]
			break
		}
	}
	out := make([]contract.CampaignBakePlan, 0, len(svcs))
	for _, svc := range svcs {
		p := plans[svc]
		if p.Spec != nil {
			p.Spec.Force = false
			switch up := parent[svc]; {
			case p.Level == 1:
				p.Spec.Base = &contract.ImageRef{Service: base.Service, Channel: base.Channel}
			case p.Spec.Base != nil && p.Spec.Base.ID != "" && plans[up.Service] != nil && plans[up.Service].Spec != nil:
				p.Spec.Base = &contract.ImageRef{Service: up.Service, Channel: plans[up.Service].Spec.Channel}
			}
		}
		out = append(out, *p)
	}
	slices.SortStableFunc(out, func(x, y contract.CampaignBakePlan) int { return x.Level - y.Level })
	return out, nil
}

// CampaignRolloutSpec is the rollout spec a campaign rolls to one service in one
// environment: the spec of its live deployment there, as the inventory
// recorded it, with the campaign's image and override, normalized.
func (a *Activities) CampaignRolloutSpec(ctx context.Context, in contract.CampaignRolloutSpecInput) (contract.CampaignRolloutSpecResult, error) {
	d, err := a.Catalog.Live(ctx, in.Service, in.Environment)
	if errors.Is(err, catalog.ErrNotFound) {
		return contract.CampaignRolloutSpecResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrCampaignTarget, nil)
	}
	if err != nil {
		return contract.CampaignRolloutSpecResult{}, inventoryError(err)
	}
	r, err := CampaignSpec(d, in)
	if err != nil {
		return contract.CampaignRolloutSpecResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrCampaignTarget, nil)
	}
	b, err := json.Marshal(r)
	return contract.CampaignRolloutSpecResult{Spec: b}, err
}

// CampaignSpec is the spec of deployment d with the image and override of in.
func CampaignSpec(d contract.Deployment, in contract.CampaignRolloutSpecInput) (spec.Rollout, error) {
	var r spec.Rollout
	if len(d.Spec) == 0 {
		return r, fmt.Errorf("the inventory has no rollout spec of %s in %s (deployment %d was recorded before imago kept specs); roll it out once with: imago rollout start -f FILE",
			in.Service, in.Environment, d.Seq)
	}
	if err := json.Unmarshal(d.Spec, &r); err != nil {
		return r, fmt.Errorf("the rollout spec of %s in %s (deployment %d) does not decode: %v", in.Service, in.Environment, d.Seq, err)
	}
	r.Service, r.Environment = in.Service, in.Environment
	r.Image = contract.ImageRef{ID: in.ImageID}
	spec.ApplyOverride(&r, in.Override)
	if err := r.Normalize(); err != nil {
		return r, fmt.Errorf("the rollout spec of %s in %s with the campaign's override: %v", in.Service, in.Environment, err)
	}
	return r, nil
}
