package bench

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

// P5: a worker dies mid-activity. The real imago-worker binary runs a rollout of a
// slow-starting hello; while WaitHealthy polls it, the worker gets SIGKILL and
// another one starts at once. From the kill, read off the workflow history: when
// the retried WaitHealthy started on the new worker, when it completed, and when
// the rollout moved on (the next workflow task completed: the next phase).
func init() {
	Register(Scenario{ID: "P5", Name: "resume after worker kill", Run: runP5})
}

const (
	p5HealthInterval = 200 * time.Millisecond
	p5StartDelay     = 3 * time.Second
	// p5Goal is issue 15's: WaitHealthy's heartbeat timeout (2 s at this
	// health interval), the retry, and the next workflow task, which the new
	// worker takes from the shared queue since it released the dead worker's
	// sticky queue when it started (docs/performance.md, "P5").
	p5Goal = 5 * time.Second
)

func runP5(ctx context.Context, env *Env) ([]Figure, error) {
	im, err := StartImago(ctx, env)
	if err != nil {
		return nil, err
	}
	defer im.Close()
	ids, err := helloImages(ctx, env, im, "v1")
	if err != nil {
		return nil, err
	}
	var slow []string
	for _, v := range []string{"v2", "v3"} {
		dir, err := env.HelloVersion(v, p5StartDelay)
		if err != nil {
			return nil, err
		}
		id, err := im.Import(ctx, dir)
		if err != nil {
			return nil, err
		}
		slow = append(slow, id)
	}
	w, err := im.StartWorkerProcess("0")
	if err != nil {
		return nil, err
	}
	r, err := im.Spec(ids[0], p5Spec)
	if err != nil {
		return nil, err
	}
	if _, err := im.Rollout(ctx, r); err != nil {
		return nil, fmt.Errorf("first rollout: %w", err)
	}

	var retried, completed, moved []time.Duration
	for i := 0; i < env.Runs; i++ {
		r, err := im.Spec(slow[i%2], p5Spec)
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		run, err := im.StartRollout(rctx, r)
		if err != nil {
			cancel()
			return nil, err
		}
		err = Poll(rctx, 20*time.Millisecond, func() (bool, error) {
			st, err := rollouts.Get(rctx, im.Client, r.Service, r.Environment)
			return err == nil && st.Status == "Running" && st.Progress != nil && st.Progress.Phase == contract.PhaseWaitingHealthy, nil
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("run %d: the rollout never reached %s: %w", i+1, contract.PhaseWaitingHealthy, err)
		}
		time.Sleep(300 * time.Millisecond) // a heartbeat or two in
		killed := time.Now()
		w.Kill()
		if w, err = im.StartWorkerProcess(fmt.Sprint(i + 1)); err != nil {
			cancel()
			return nil, err
		}
		var res contract.RolloutResult
		if err := run.Get(rctx, &res); err != nil {
			cancel()
			return nil, fmt.Errorf("run %d: the rollout did not complete after the kill: %s", i+1, rollouts.Reason(err))
		}
		a, b, c, err := p5Times(rctx, im, run.GetID(), run.GetRunID(), killed)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		env.logf("P5 run %d: retry started +%s, completed +%s, next phase +%s", i+1, Dur(a), Dur(b), Dur(c))
		retried, completed, moved = append(retried, a), append(completed, b), append(moved, c)
	}
	m := Median(moved)
	return []Figure{
		{ID: "P5", Name: fmt.Sprintf("kill -9 → WaitHealthy retried on the new worker (median of %d)", len(retried)), Value: Dur(Median(retried)), Goal: "-", Met: true},
		{ID: "P5", Name: "kill -9 → WaitHealthy completed (history)", Value: Dur(Median(completed)), Goal: "-", Met: true},
		{ID: "P5", Name: "kill -9 → rollout moves to its next phase (history)", Value: Dur(m),
			Goal: "≤ " + Dur(p5Goal), Met: m <= p5Goal},
	}, nil
}

func p5Spec(r *spec.Rollout) {
	r.Health.Interval = contract.Duration(p5HealthInterval)
}

// p5Times reads the history: the WaitHealthy that completed after killed, its
// attempt's start, and the first workflow task completed after it.
func p5Times(ctx context.Context, im *Imago, id, runID string, killed time.Time) (started, completed, moved time.Duration, err error) {
	waitHealthy := map[int64]bool{}
	var done int64
	err = eachEvent(ctx, im.Client, id, runID, func(ev *historypb.HistoryEvent) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			if ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == "WaitHealthy" {
				waitHealthy[ev.GetEventId()] = true
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := ev.GetActivityTaskStartedEventAttributes()
			if waitHealthy[a.GetScheduledEventId()] {
				started = ev.GetEventTime().AsTime().Sub(killed)
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			if waitHealthy[a.GetScheduledEventId()] && done == 0 {
				done = ev.GetEventId()
				completed = ev.GetEventTime().AsTime().Sub(killed)
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if done != 0 && moved == 0 {
				moved = ev.GetEventTime().AsTime().Sub(killed)
			}
		}
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if done == 0 || moved == 0 {
		return 0, 0, 0, fmt.Errorf("no completed WaitHealthy followed by a workflow task in the history of %s", id)
	}
	return started, completed, moved, nil
}
