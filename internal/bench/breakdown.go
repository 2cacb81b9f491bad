package bench

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
)

// Breakdown says where the time of a set of workflow runs went, from their
// histories: per step (workflow tasks, each activity type), how long tasks
// waited in the task queue (scheduled → started: a free worker slot and a
// poller) and how long they ran (started → completed). Summed over the runs
// and shown as medians and p90s, it tells waiting on the server and the worker
// from work in activities. The scenarios log it (imago-bench without -q).
type Breakdown struct {
	Runs  int
	steps map[string]*stepTimes
	// per run: first event (started) and close, and the time in steps
	first, last []time.Time
	inSteps     []time.Duration
}

type stepTimes struct {
	wait, run []time.Duration
}

// Execution names one run of a workflow.
type Execution struct{ ID, RunID string }

// NewBreakdown reads the histories of runs.
func NewBreakdown(ctx context.Context, c client.Client, runs []Execution) (*Breakdown, error) {
	b := &Breakdown{Runs: len(runs), steps: map[string]*stepTimes{}}
	for _, r := range runs {
		if err := b.add(ctx, c, r); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Breakdown) step(name string) *stepTimes {
	s := b.steps[name]
	if s == nil {
		s = &stepTimes{}
		b.steps[name] = s
	}
	return s
}

func (b *Breakdown) add(ctx context.Context, c client.Client, r Execution) error {
	scheduled := map[int64]time.Time{} // scheduled event id → time
	started := map[int64]time.Time{}   // scheduled event id → started time
	activity := map[int64]string{}     // scheduled event id → activity type
	var wftScheduled, wftStarted, first, last time.Time
	var in time.Duration
	err := eachEvent(ctx, c, r.ID, r.RunID, func(ev *historypb.HistoryEvent) {
		at := ev.GetEventTime().AsTime()
		if first.IsZero() {
			first = at
		}
		last = at
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			wftScheduled = at
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			wftStarted = at
			s := b.step("workflow task")
			s.wait = append(s.wait, at.Sub(wftScheduled))
			in += at.Sub(wftScheduled)
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
			s := b.step("workflow task")
			s.run = append(s.run, at.Sub(wftStarted))
			in += at.Sub(wftStarted)
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = at
			activity[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			id := ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			started[id] = at
			s := b.step(activity[id])
			s.wait = append(s.wait, at.Sub(scheduled[id]))
			in += at.Sub(scheduled[id])
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			id := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			s := b.step(activity[id])
			s.run = append(s.run, at.Sub(started[id]))
			in += at.Sub(started[id])
		}
	})
	if err != nil {
		return err
	}
	b.first, b.last, b.inSteps = append(b.first, first), append(b.last, last), append(b.inSteps, in)
	return nil
}

// String is one line per step, the steps with the most time first: count per
// run, queue wait median / p90 / sum per run, run time median / p90 / sum per run.
func (b *Breakdown) String() string {
	type row struct {
		name       string
		n          int
		wait, run  []time.Duration
		total      time.Duration
		waitPerRun time.Duration
		runPerRun  time.Duration
	}
	sum := func(xs []time.Duration) (t time.Duration) {
		for _, x := range xs {
			t += x
		}
		return t
	}
	runs := max(b.Runs, 1)
	var rows []row
	for name, s := range b.steps {
		r := row{name: name, n: max(len(s.wait), len(s.run)), wait: s.wait, run: s.run,
			waitPerRun: sum(s.wait) / time.Duration(runs), runPerRun: sum(s.run) / time.Duration(runs)}
		r.total = r.waitPerRun + r.runPerRun
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].total > rows[j].total })
	var sb strings.Builder
	if len(b.first) > 0 {
		t0 := b.first[0]
		for _, t := range b.first {
			if t.Before(t0) {
				t0 = t
			}
		}
		var starts, ends, durs, outside []time.Duration
		for i := range b.first {
			starts, ends = append(starts, b.first[i].Sub(t0)), append(ends, b.last[i].Sub(t0))
			durs = append(durs, b.last[i].Sub(b.first[i]))
			outside = append(outside, b.last[i].Sub(b.first[i])-b.inSteps[i])
		}
		fmt.Fprintf(&sb, "runs started +%s (p50) / +%s (last), ended +%s / +%s; each took %s (p50) / %s (max), of which outside the steps below %s / %s\n",
			Dur(Median(starts)), Dur(Percentile(starts, 100)), Dur(Median(ends)), Dur(Percentile(ends, 100)),
			Dur(Median(durs)), Dur(Percentile(durs, 100)), Dur(Median(outside)), Dur(Percentile(outside, 100)))
	}
	fmt.Fprintf(&sb, "%-22s %6s | %-30s | %-30s\n", fmt.Sprintf("step (%d runs)", b.Runs), "n/run", "queue wait p50 / p90 / per run", "run p50 / p90 / per run")
	for _, r := range rows {
		fmt.Fprintf(&sb, "%-22s %6.1f | %9s %9s %10s | %9s %9s %10s\n", r.name, float64(r.n)/float64(runs),
			Dur(Median(r.wait)), Dur(Percentile(r.wait, 90)), Dur(r.waitPerRun),
			Dur(Median(r.run)), Dur(Percentile(r.run, 90)), Dur(r.runPerRun))
	}
	return sb.String()
}
