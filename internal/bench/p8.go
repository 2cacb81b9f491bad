package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
)

// P8: campaign throughput. One campaign (workflows.Campaign, as `imago campaign
// start` runs it) rolls the image its channel names to 200 services in 2
// rings, [staging] then [production], p8Parallel rollouts at a time: 400 child
// rollouts, each of a small sim fleet behind its own router, on one
// imago-worker process, timed from the campaign's start to its result.
func init() {
	Register(Scenario{ID: "P8", Name: "campaign: 200 services × 2 environments on one imago-worker", Run: runP8})
}

const (
	p8Services = 200
	p8Size     = 2  // sim instances per fleet
	p8Parallel = 50 // rollouts at a time in each ring
	p8Goal     = 60 * time.Second
	p8RSSGoal  = 300 // MB, imago-worker's peak RSS
	// p8Budget bounds the run: a campaign not finished by then is reported
	// with the rollouts it finished, not waited for (docs/performance.md).
	p8Budget = 3 * p8Goal
)

var p8Environments = []string{"staging", "production"}

func runP8(ctx context.Context, env *Env) ([]Figure, error) {
	im, w, err := startSimWorker(ctx, env, "p8")
	if err != nil {
		return nil, err
	}
	defer im.Close()
	services, err := p8Setup(ctx, im)
	if err != nil {
		return nil, err
	}
	cs := contract.CampaignSpec{Name: "p8", Services: services, Image: contract.CampaignImage{Channel: "stable"},
		ErrorBudget: contract.ErrorBudget{MaxFailed: 1}}
	for _, e := range p8Environments {
		cs.Rings = append(cs.Rings, contract.Ring{Environments: []string{e}, Parallel: p8Parallel})
	}
	rctx, cancel := context.WithTimeout(ctx, p8Budget)
	defer cancel()
	start := time.Now()
	run, err := campaigns.Start(rctx, im.Client, cs, "imago-bench")
	if err != nil {
		return nil, err
	}
	var res contract.CampaignResult
	runErr := run.Get(rctx, &res)
	took := time.Since(start)
	var failed0 *temporal.WorkflowExecutionError
	if errors.As(runErr, &failed0) {
		return nil, fmt.Errorf("campaign: %s", rollouts.Reason(runErr))
	}
	// Count the child rollouts that ended (not the campaign's query: a
	// campaign out of budget may not answer in time): each has its usual ID.
	n := len(services) * len(p8Environments)
	finished, failed := 0, 0
	var done []Execution
	for _, svc := range services {
		for _, e := range p8Environments {
			id := contract.RolloutWorkflowID(svc, e)
			d, err := im.Client.DescribeWorkflowExecution(ctx, id, "")
			if err != nil {
				continue // never started
			}
			switch info := d.GetWorkflowExecutionInfo(); info.GetStatus() {
			case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
				finished++
				done = append(done, Execution{ID: id, RunID: info.GetExecution().GetRunId()})
			case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			default:
				failed++
			}
		}
	}
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d rollouts of the campaign failed", failed, n)
	}
	if b, err := NewBreakdown(ctx, im.Client, done); err == nil {
		env.logf("P8: where the time of the %d rollouts went:\n%s", len(done), b)
	}
	hwm, err := vmHWM(w.Cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	mb := float64(hwm) / 1024
	value := Dur(took)
	if finished < n {
		value = fmt.Sprintf("> %s (%d of %d finished)", Dur(took), finished, n)
	}
	return []Figure{
		{Name: fmt.Sprintf("%d rollouts (%d services × %d environments), total (1 run: %d sim instances, %d routers)",
			n, p8Services, len(p8Environments), n*p8Size, n), Value: value, Goal: "≤ " + Dur(p8Goal), Met: finished == n && took <= p8Goal},
		{Name: "imago-worker peak RSS (VmHWM)", Value: fmt.Sprintf("%.0f MB", mb), Goal: fmt.Sprintf("≤ %d MB", p8RSSGoal), Met: mb <= p8RSSGoal},
		{Name: fmt.Sprintf("one campaign, rings [staging] then [production], %d at a time: rollouts finished", p8Parallel),
			Value: fmt.Sprintf("%d of %d", finished, n), Goal: fmt.Sprintf("%d of %d", n, n), Met: finished == n},
	}, nil
}

// p8Setup imports a sim image v1 and v2 of each service, points its channel
// stable at v2 and records in the inventory a deployment of v1 in each
// environment with the spec a campaign rolls again (what `imago rollout
// start` would have left). The campaign's 400 rollouts are then first
// deployments on fresh routers: the same work as before campaigns existed.
func p8Setup(ctx context.Context, im *Imago) ([]string, error) {
	var services []string
	for i := range p8Services {
		svc := fmt.Sprintf("svc%03d", i+1)
		v1, v2, err := im.SimImages(ctx, svc)
		if err != nil {
			return nil, err
		}
		if _, err := im.Deps.Catalog.MoveChannel(ctx, svc, "stable", v2, catalog.MoveOptions{By: "imago-bench"}); err != nil {
			return nil, err
		}
		for _, e := range p8Environments {
			listen, err := routerAddr()
			if err != nil {
				return nil, err
			}
			r, err := im.SimSpec(svc, listen, v1, "v2", p8Size)
			if err != nil {
				return nil, err
			}
			r.Environment = e
			r.Strategy.Waves = "100%"
			b, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			if _, err := im.Deps.Catalog.RecordDeployment(ctx, contract.Deployment{Service: svc, Environment: e, ImageID: v1,
				Outcome: contract.OutcomeSucceeded, StartedBy: "imago-bench", Spec: b}); err != nil {
				return nil, err
			}
		}
		services = append(services, svc)
	}
	return services, nil
}
