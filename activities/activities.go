// Package activities holds imago's Temporal activities. They are thin: each one
// calls the provider, the catalog or an HTTP probe, and turns permanent problems
// into non-retryable errors so a workflow fails fast with a reason a person can
// act on, while transient ones retry.
package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/bake/runas"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/entrypoint"
	"github.com/imago/imago/internal/events"
	"github.com/imago/imago/internal/policy"
	"github.com/imago/imago/internal/probe"
	"github.com/imago/imago/internal/provenance"
	"github.com/imago/imago/internal/provider"
	"github.com/imago/imago/internal/spec"
)

// Activities are the rollout's steps. Fields are their dependencies; the worker
// builds one value and registers it.
type Activities struct {
	Provider *provider.Provider
	// Local boots local images for bake tests when Provider is another (aws); nil: Provider.
	Local   *provider.Provider
	Catalog *catalog.Catalog
	// HTTP probes the instances of a fleet (health, smoke checks): addresses the
	// provider reports, never a URL from a spec. It must not follow redirects.
	HTTP *http.Client
	// Analysis queries the URLs of the prometheus and http analysis providers,
	// which a spec chose: a netguard client (IMAGO_ANALYSIS_ALLOW). nil allows
	// public addresses only.
	Analysis *http.Client
	Home     string // $IMAGO_HOME: bakes build under Home/bakes
	Packer   string // the packer binary, for bakes with builder packer
	// BakeRoots, when not empty (IMAGO_BAKE_ROOTS), are the only directories a
	// bake may read, whoever started it; empty: any the worker can read.
	BakeRoots spec.BakeRoots
	// BakeUser runs bakes' provision commands and packer as another user
	// (IMAGO_BAKE_USER); nil: as the worker.
	BakeUser *runas.User
	// Temporal lets a bake start the pipelines of images built on it (see
	// StartDependents); nil turns that off.
	Temporal client.Client
	Events   *events.Publisher // phase and outcome events (PublishEvent); nil publishes nothing
	// HookSecret (IMAGO_HOOK_SECRET) signs hook requests whose spec names no
	// hooks.secret; NotifyURL (IMAGO_NOTIFY_URL) is told of every rollout's
	// notices in NotifyFormat (IMAGO_NOTIFY_FORMAT, default slack). See hooks.go, notify.go.
	HookSecret   string
	NotifyURL    string
	NotifyFormat string
	// Signer signs the provenance of every image a bake publishes (the key of
	// IMAGO_SIGNING_KEY, on this worker only); nil stores it unsigned.
	Signer *provenance.Signer
	// Worker is this worker's identity in provenance; "" pid@host.
	Worker string
	// Provenance verifies an image's signed provenance for environments whose
	// policy requires it (--require-provenance); nil: policy.NoVerifier, which
	// finds none, so such an environment refuses every image.
	Provenance policy.ProvenanceChecker
}

func (a *Activities) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return defaultProbe
}

var defaultProbe = ProbeClient()

// ProbeClient is the client of health probes and smoke checks (probe.Client).
func ProbeClient() *http.Client { return probe.Client() }

// ResolveImage finds the image a rollout ships and refuses a revoked or
// deleted one, a deprecated one unless the rollout allows it, and one its
// environment's policy refuses (see checkPolicy).
func (a *Activities) ResolveImage(ctx context.Context, in contract.ResolveImageInput) (contract.ResolveImageResult, error) {
	img, err := a.resolveRef(ctx, in.Service, in.Ref)
	if err != nil {
		return contract.ResolveImageResult{}, err
	}
	if err := img.Usable(); err != nil {
		return contract.ResolveImageResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrImageRevoked, nil)
	}
	if d := img.Deprecated; d != nil && !in.Ref.AllowDeprecated {
		return contract.ResolveImageResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"image %s is deprecated by %s since %s: roll out a newer image, or allow it with imago rollout start --allow-deprecated (image.allowDeprecated: true in the spec)",
			img.ID, d.Rule, d.Time.UTC().Format(time.RFC3339)), contract.ErrImageDeprecated, nil)
	}
	if err := checkEntrypointEnv(img, in.Env); err != nil {
		return contract.ResolveImageResult{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrEntrypointEnv, nil)
	}
	if err := a.checkPolicy(ctx, in.Environment, img); err != nil {
		return contract.ResolveImageResult{}, err
	}
	return contract.ResolveImageResult{ImageID: img.ID, Digest: img.Digest, Service: img.Service}, nil
}

// checkEntrypointEnv refuses an image whose entrypoint uses a variable that is
// neither PORT, HOST nor one of env, before anything is provisioned.
func checkEntrypointEnv(img contract.Image, env []string) error {
	if err := entrypoint.CheckEnv(img.Entrypoint, func(n string) bool { return slices.Contains(env, n) }); err != nil {
		return fmt.Errorf("env: image %s: %v; %s", img.ID, err, spec.EnvHint)
	}
	return nil
}

// ReadRoute returns the current route of a service's router.
func (a *Activities) ReadRoute(ctx context.Context, key contract.RouteKey) (contract.Route, error) {
	r, err := a.Provider.Route(ctx, key)
	return r, providerError(err)
}

// FleetImage reads the image of a fleet (the live one a canary's baseline
// starts from) and how many instances it has.
func (a *Activities) FleetImage(ctx context.Context, in contract.FleetImageInput) (contract.FleetImageResult, error) {
	f, err := a.Provider.Describe(ctx, in.FleetID)
	if err != nil {
		return contract.FleetImageResult{}, providerError(err)
	}
	return contract.FleetImageResult{FleetID: f.ID, ImageID: f.ImageID, Instances: len(f.Instances)}, nil
}

// Provision creates the new fleet, or adopts the one a previous attempt made with
// the same token. It heartbeats while the provider works, so a cancelled
// rollout stops it (and then tears down what it made) instead of waiting for it.
func (a *Activities) Provision(ctx context.Context, req contract.ProvisionRequest) (contract.Fleet, error) {
	hb := startHeartbeat(ctx, fmt.Sprintf("provisioning %d × %s", req.Size, req.ImageID))
	defer hb.Stop()
	f, err := a.Provider.Provision(withProgress(ctx, hb), req)
	err = providerError(err)
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.NonRetryable() {
		// No retry will adopt what this attempt made: remove it now.
		_, _ = a.terminateToken(context.WithoutCancel(ctx), contract.TerminateByTokenInput{Token: req.Token, Service: req.Service, Environment: req.Environment})
	}
	return f, err
}

// TerminateByToken terminates every fleet a provision request (its token)
// made, found however far the provision got: a rollout that is cancelled or
// fails while provisioning knows the token, not the fleet. None is no error.
// It returns the fleets terminated.
func (a *Activities) TerminateByToken(ctx context.Context, in contract.TerminateByTokenInput) ([]string, error) {
	hb := startHeartbeat(ctx, "finding the fleets of "+in.Token)
	defer hb.Stop()
	ids, err := a.terminateToken(withProgress(ctx, hb), in)
	return ids, providerError(err)
}

func (a *Activities) terminateToken(ctx context.Context, in contract.TerminateByTokenInput) ([]string, error) {
	if in.Token == "" {
		return nil, provider.Errorf(provider.InvalidArgument, "terminate by token: no token")
	}
	fleets, err := a.Provider.ListFleets(ctx, provider.Filter{Service: in.Service, Environment: in.Environment})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range fleets {
		if f.Token != in.Token {
			continue
		}
		if err := a.Provider.Terminate(ctx, f.ID); err != nil {
			return ids, err
		}
		ids = append(ids, f.ID)
	}
	return ids, nil
}

// withProgress makes a provider's progress reports (each round of a long wait)
// the details of the activity's heartbeats.
func withProgress(ctx context.Context, hb *heartbeater) context.Context {
	return provider.WithProgress(ctx, func(msg string) { hb.Set(msg) })
}

// SetRoute switches the router; it returns once new requests follow the new route.
// The traffic guard never routes away from the last healthy fleet: a route whose
// weighted fleets have no healthy instance is refused and the current one stays.
func (a *Activities) SetRoute(ctx context.Context, in contract.SetRouteInput) error {
	route := in.Route
	if len(in.Shares) > 0 {
		var err error
		if route.Backends, err = a.backends(ctx, in.Shares); err != nil {
			return err
		}
	}
	if in.HealthPath != "" {
		for _, b := range route.Backends {
			if !route.Serves(b.FleetID) { // a weight, or requests by a header route or mirror
				continue
			}
			// One healthy instance is enough to receive traffic.
			if !probe.Any(ctx, a.httpClient(), b.Targets, in.HealthPath) {
				what := fmt.Sprintf("%d%% of %s", b.Weight, in.Key)
				if b.Weight == 0 {
					what = "the requests route rules of " + in.Key.String() + " pick"
				}
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
					"traffic guard: refusing to send %s to fleet %s: none of its %d instances passes %s; the current route stays",
					what, b.FleetID, len(b.Targets), in.HealthPath), contract.ErrTrafficGuard, nil)
			}
		}
	}
	return providerError(a.Provider.SetRoute(ctx, in.Key, route))
}

// backends looks up the targets of each share: the addresses of its fleet's
// instances (the first share.Instances of them when set). An instance a
// resize planned but could not start has no address yet: it is no target.
func (a *Activities) backends(ctx context.Context, shares []contract.FleetShare) ([]contract.Backend, error) {
	out := make([]contract.Backend, 0, len(shares))
	for _, s := range shares {
		f, err := a.Provider.Describe(ctx, s.FleetID)
		if err != nil {
			return nil, providerError(err)
		}
		if s.Instances > 0 && s.Instances < len(f.Instances) {
			f.Instances = f.Instances[:s.Instances]
		}
		f.Instances = slices.DeleteFunc(f.Instances, func(in contract.Instance) bool { return in.Address == "" })
		out = append(out, contract.Backend{FleetID: s.FleetID, Weight: s.Weight, Targets: f.Addresses()})
	}
	return out, nil
}

// ScaleFleet grows or shrinks a fleet (rolling rollouts) and reports how many
// instances it has now; retries are idempotent. Its result is a count, not the
// instances: a rolling rollout calls it twice a wave.
func (a *Activities) ScaleFleet(ctx context.Context, in contract.ResizeInput) (contract.ResizeResult, error) {
	f, err := a.Provider.Resize(ctx, in.FleetID, in.Size)
	return contract.ResizeResult{FleetID: in.FleetID, Instances: len(f.Instances)}, providerError(err)
}

// ResizeFleet is ScaleFleet returning the whole fleet. Only rollouts started
// before ScaleFleet existed call it (their histories replay it); keep it
// registered until none of them runs.
func (a *Activities) ResizeFleet(ctx context.Context, in contract.ResizeInput) (contract.Fleet, error) {
	f, err := a.Provider.Resize(ctx, in.FleetID, in.Size)
	return f, providerError(err)
}

// Terminate stops a fleet; the provider refuses if it still receives traffic.
// It heartbeats on a ticker, with the provider's latest progress report (a
// load balancer draining for its deregistration delay) as details.
func (a *Activities) Terminate(ctx context.Context, in contract.TerminateInput) error {
	hb := startHeartbeat(ctx, "terminating "+in.FleetID)
	defer hb.Stop()
	return providerError(a.Provider.Terminate(withProgress(ctx, hb), in.FleetID))
}

// providerError makes permanent provider errors non-retryable.
func providerError(err error) error {
	if err == nil {
		return nil
	}
	switch provider.ErrorCode(err) {
	case provider.InvalidArgument, provider.FailedPrecondition, provider.NotFound:
		return temporal.NewNonRetryableApplicationError(err.Error(), contract.ErrProvider, err)
	}
	return err
}
