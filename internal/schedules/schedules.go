// Package schedules is the client side of imago's schedules: golden-image
// rebuilds on Temporal Schedules. Each schedule starts a Pipeline workflow (a bake,
// then optionally rollouts to environments in order) on a cron expression or an
// interval. The CLI and the REST API both go through it.
package schedules

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/activities"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
	"github.com/imago/imago/workflows"
)

// Overlap policies by the names the CLI takes.
var overlaps = map[string]enumspb.ScheduleOverlapPolicy{
	"skip":         enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	"buffer-one":   enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE,
	"buffer-all":   enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL,
	"cancel-other": enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
	"allow-all":    enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
}

// OverlapNames lists the overlap policies, for help texts and completion.
func OverlapNames() []string {
	names := make([]string, 0, len(overlaps))
	for n := range overlaps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func overlapName(p enumspb.ScheduleOverlapPolicy) string {
	for n, v := range overlaps {
		if v == p {
			return n
		}
	}
	return "skip" // the server's default (UNSPECIFIED)
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// CreateOptions describe a new schedule.
type CreateOptions struct {
	Name string
	// Pipeline is the loaded pipeline the schedule runs: its bake, and stages
	// when it was created with --then (none: a rebuild only).
	Pipeline spec.Pipeline
	Cron     string        // a cron expression ("0 3 * * *", "@daily"), or
	Every    time.Duration // an interval
	Timezone string        // IANA name for the cron expression; default UTC
	Overlap  string        // skip (default), buffer-one, cancel-other, buffer-all, allow-all
	// Always builds and rolls out on every tick; by default a tick whose inputs did
	// not change is skipped, with the reason in the schedule's history.
	Always    bool
	Paused    bool
	Note      string
	StartedBy string
}

// Validate reports every problem with the options at once.
func (o *CreateOptions) Validate() error {
	var es contract.FieldErrors
	add := func(field, format string, args ...any) {
		es = append(es, contract.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if !nameRE.MatchString(o.Name) {
		add("name", "%q must be 1-40 lowercase letters, digits or '-'", o.Name)
	}
	switch {
	case o.Cron == "" && o.Every <= 0:
		add("cron", "set --cron EXPR (e.g. \"0 3 * * *\" or @daily) or --every DURATION (e.g. 24h)")
	case o.Cron != "" && o.Every > 0:
		add("cron", "set --cron or --every, not both")
	case o.Every > 0 && o.Every < time.Second:
		add("every", "must be at least 1s, got %s", o.Every)
	case o.Cron != "" && len(strings.Fields(o.Cron)) != 5 && !strings.HasPrefix(o.Cron, "@"):
		add("cron", "%q is not a cron expression: want 5 fields (minute hour day month weekday) or @hourly, @daily, @weekly, @every 1h", o.Cron)
	}
	if o.Timezone != "" {
		if _, err := time.LoadLocation(o.Timezone); err != nil {
			add("timezone", "%q is not an IANA time zone, e.g. Europe/Berlin", o.Timezone)
		}
	}
	if o.Overlap == "" {
		o.Overlap = "skip"
	}
	if _, ok := overlaps[o.Overlap]; !ok {
		add("overlap", "%q: want one of %s", o.Overlap, strings.Join(OverlapNames(), ", "))
	}
	if o.Pipeline.Bake == nil {
		add("bake", "a schedule rebuilds an image: give it a bake spec (--bake FILE)")
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// NotFoundError is a schedule that does not exist.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no schedule %q; list them with: imago schedule list", e.Name)
}

// ExistsError refuses a second schedule of the same name.
type ExistsError struct{ Name string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("schedule %q already exists; see it with: imago schedule describe %s, or delete it first", e.Name, e.Name)
}

// Create validates o and creates its schedule.
func Create(ctx context.Context, c client.Client, o CreateOptions) error {
	if err := o.Validate(); err != nil {
		return err
	}
	p := o.Pipeline
	p.Name = o.Name
	s := client.ScheduleSpec{TimeZoneName: o.Timezone}
	if o.Cron != "" {
		s.CronExpressions = []string{o.Cron}
	} else {
		s.Intervals = []client.ScheduleIntervalSpec{{Every: o.Every}}
	}
	attrs := []temporal.SearchAttributeUpdate{contract.ServiceAttr.ValueSet(p.Service())}
	if p.OnBaseChange && p.Bake != nil && p.Bake.Base != nil {
		base := p.Bake.Base
		svc := base.Service
		if svc == "" {
			svc = p.Bake.Service
		}
		attrs = append(attrs, contract.WatchBaseAttr.ValueSet(svc+"/"+base.Channel))
	}
	by := o.StartedBy
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:   o.Name,
		Spec: s,
		Action: &client.ScheduleWorkflowAction{
			ID:        contract.PipelineWorkflowID(o.Name),
			Workflow:  workflows.Pipeline,
			Args:      []any{contract.PipelineInput{Spec: p.Pipeline, Always: o.Always, Trigger: "schedule", StartedBy: "schedule " + o.Name + " (created by " + by + ")"}},
			TaskQueue: contract.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(
				contract.ServiceAttr.ValueSet(p.Service()), contract.PhaseAttr.ValueSet("pending")),
		},
		Overlap:               overlaps[o.Overlap],
		Paused:                o.Paused,
		Note:                  o.Note,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	})
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &exists) || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return &ExistsError{Name: o.Name}
	}
	var invalid *serviceerror.InvalidArgument
	if errors.As(err, &invalid) {
		return contract.FieldErrors{{Field: "cron", Msg: invalid.Message}}
	}
	if err != nil {
		return fmt.Errorf("create schedule %s: %w", o.Name, err)
	}
	return nil
}

// Action is one run a schedule started, and how it ended.
type Action struct {
	ScheduledAt time.Time `json:"scheduledAt"`
	StartedAt   time.Time `json:"startedAt"`
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId"`
	Status      string    `json:"status"` // Running, Succeeded, Failed, … (rollouts.StatusName)
	// Outcome says what the run did: "skipped: inputs unchanged; …", "img-… rolled
	// out to staging (succeeded), prod (succeeded)", or why it failed.
	Outcome string `json:"outcome,omitempty"`
}

// Schedule is a schedule as list and describe show it.
type Schedule struct {
	Name      string      `json:"name"`
	Service   string      `json:"service,omitempty"`
	Spec      string      `json:"spec"` // "cron 0 3 * * * (Europe/Berlin)" or "every 24h0m0s"
	Overlap   string      `json:"overlap,omitempty"`
	Paused    bool        `json:"paused"`
	Note      string      `json:"note,omitempty"`
	WatchBase string      `json:"watchBase,omitempty"` // the base channel whose moves start it
	NextRuns  []time.Time `json:"nextRuns,omitempty"`
	Recent    []Action    `json:"recentActions,omitempty"`
	Actions   int         `json:"actions"`
	Skipped   int         `json:"skippedOverlap"`
	Created   *time.Time  `json:"created,omitempty"` // describe only
}

func specString(s *client.ScheduleSpec) string {
	if s == nil {
		return ""
	}
	var parts []string
	for _, c := range s.CronExpressions {
		parts = append(parts, "cron "+c)
	}
	for _, cal := range s.Calendars {
		parts = append(parts, "cron "+cronOf(cal))
	}
	for _, iv := range s.Intervals {
		parts = append(parts, "every "+iv.Every.String())
	}
	out := strings.Join(parts, "; ")
	if s.TimeZoneName != "" {
		out += " (" + s.TimeZoneName + ")"
	}
	return out
}

// cronOf renders a calendar spec (the server keeps cron expressions as these) as
// the five cron fields: minute hour day-of-month month day-of-week.
func cronOf(c client.ScheduleCalendarSpec) string {
	field := func(rs []client.ScheduleRange, lo, hi int) string {
		if len(rs) == 0 {
			return "*"
		}
		var out []string
		for _, r := range rs {
			end := r.End
			if end < r.Start {
				end = r.Start
			}
			step := ""
			if r.Step > 1 {
				step = fmt.Sprintf("/%d", r.Step)
			}
			switch {
			case r.Start == lo && end == hi:
				out = append(out, "*"+step)
			case r.Start == end:
				out = append(out, fmt.Sprintf("%d%s", r.Start, step))
			default:
				out = append(out, fmt.Sprintf("%d-%d%s", r.Start, end, step))
			}
		}
		return strings.Join(out, ",")
	}
	return strings.Join([]string{
		field(c.Minute, 0, 59), field(c.Hour, 0, 23), field(c.DayOfMonth, 1, 31), field(c.Month, 1, 12), field(c.DayOfWeek, 0, 6),
	}, " ")
}

// List returns imago's schedules by name.
func List(ctx context.Context, c client.Client) ([]Schedule, error) {
	it, err := c.ScheduleClient().List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var out []Schedule
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if !slices.Contains([]string{contract.WorkflowPipeline, contract.WorkflowReaper, contract.WorkflowDrift, contract.WorkflowLifecycle}, e.WorkflowType.Name) {
			continue // not imago's
		}
		s := Schedule{Name: e.ID, Spec: specString(e.Spec), Paused: e.Paused, Note: e.Note, NextRuns: e.NextActionTimes}
		s.Service = activities.Keyword(e.SearchAttributes, contract.ServiceAttr)
		s.WatchBase = activities.Keyword(e.SearchAttributes, contract.WatchBaseAttr)
		for _, a := range e.RecentActions {
			s.Recent = append(s.Recent, action(a))
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func action(a client.ScheduleActionResult) Action {
	out := Action{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime}
	if w := a.StartWorkflowResult; w != nil {
		out.WorkflowID, out.RunID = w.WorkflowID, w.FirstExecutionRunID
	}
	return out
}

// Describe returns a schedule with its next runs and its recent actions, each
// with its outcome (a skipped tick says why).
func Describe(ctx context.Context, c client.Client, name string) (Schedule, error) {
	d, err := c.ScheduleClient().GetHandle(ctx, name).Describe(ctx)
	if err != nil {
		return Schedule{}, notFound(name, err)
	}
	s := Schedule{
		Name: name, Spec: specString(d.Schedule.Spec), NextRuns: d.Info.NextActionTimes,
		Actions: d.Info.NumActions, Skipped: d.Info.NumActionsSkippedOverlap, Created: &d.Info.CreatedAt,
	}
	if d.Schedule.State != nil {
		s.Paused, s.Note = d.Schedule.State.Paused, d.Schedule.State.Note
	}
	if d.Schedule.Policy != nil {
		s.Overlap = overlapName(d.Schedule.Policy.Overlap)
	}
	s.Service = activities.Keyword(d.SearchAttributes, contract.ServiceAttr)
	s.WatchBase = activities.Keyword(d.SearchAttributes, contract.WatchBaseAttr)
	for i := len(d.Info.RecentActions) - 1; i >= 0; i-- { // newest first
		a := action(d.Info.RecentActions[i])
		a.Status, a.Outcome = outcome(ctx, c, a.WorkflowID, a.RunID)
		s.Recent = append(s.Recent, a)
	}
	return s, nil
}

// outcome reads how a pipeline run ended: its result's reason, or its failure.
func outcome(ctx context.Context, c client.Client, id, runID string) (status, msg string) {
	if id == "" {
		return "", ""
	}
	d, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return "unknown", err.Error()
	}
	st := d.GetWorkflowExecutionInfo().GetStatus()
	status = rollouts.StatusName(st)
	switch st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return status, ""
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var res struct { // a PipelineResult's Reason, or a ReaperResult's or DriftReport's Summary
			Reason  string `json:"reason"`
			Summary string `json:"summary"`
		}
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
			return status, err.Error()
		}
		return status, res.Reason + res.Summary
	default:
		err := c.GetWorkflow(ctx, id, runID).Get(ctx, nil)
		var app *temporal.ApplicationError
		if errors.As(err, &app) {
			return status, app.Message()
		}
		if err != nil {
			return status, err.Error()
		}
		return status, ""
	}
}

func notFound(name string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return &NotFoundError{Name: name}
	}
	return fmt.Errorf("schedule %s: %w", name, err)
}

// Pause stops a schedule from starting runs; note says why (shown by describe).
func Pause(ctx context.Context, c client.Client, name, note string) error {
	return notFoundOr(name, c.ScheduleClient().GetHandle(ctx, name).Pause(ctx, client.SchedulePauseOptions{Note: note}))
}

// Unpause resumes a paused schedule.
func Unpause(ctx context.Context, c client.Client, name, note string) error {
	return notFoundOr(name, c.ScheduleClient().GetHandle(ctx, name).Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}))
}

// Trigger runs the schedule's action now, under its overlap policy.
func Trigger(ctx context.Context, c client.Client, name string) error {
	return notFoundOr(name, c.ScheduleClient().GetHandle(ctx, name).Trigger(ctx, client.ScheduleTriggerOptions{}))
}

// Backfill runs the actions the schedule would have run between from and to
// (e.g. ticks missed while imago was down), under its overlap policy.
func Backfill(ctx context.Context, c client.Client, name string, from, to time.Time) error {
	if !to.After(from) {
		return contract.FieldErrors{{Field: "backfill", Msg: fmt.Sprintf("TO (%s) must be after FROM (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))}}
	}
	return notFoundOr(name, c.ScheduleClient().GetHandle(ctx, name).Backfill(ctx, client.ScheduleBackfillOptions{
		Backfill: []client.ScheduleBackfill{{Start: from, End: to}},
	}))
}

// Delete removes a schedule; runs it started go on.
func Delete(ctx context.Context, c client.Client, name string) error {
	return notFoundOr(name, c.ScheduleClient().GetHandle(ctx, name).Delete(ctx))
}

func notFoundOr(name string, err error) error {
	if err == nil {
		return nil
	}
	return notFound(name, err)
}

// ReaperScheduleID is the schedule of the leak collector.
const ReaperScheduleID = "imago-reaper"

// ReaperOptions configure the reaper's schedule.
type ReaperOptions struct {
	Every time.Duration // default 1h
	Grace time.Duration // default contract.DefaultReaperGrace
	Apply bool          // terminate; default a dry run that only reports
}

// CreateReaper schedules the Reaper workflow (see workflows.Reaper); each sweep's
// findings are in its result, shown by describe.
func CreateReaper(ctx context.Context, c client.Client, o ReaperOptions) error {
	if o.Grace < 0 {
		return contract.FieldErrors{{Field: "grace", Msg: "must not be negative"}}
	}
	return createEvery(ctx, c, ReaperScheduleID, o.Every, &client.ScheduleWorkflowAction{
		ID: "reaper", Workflow: workflows.Reaper, TaskQueue: contract.TaskQueue,
		Args: []any{contract.ReaperInput{Apply: o.Apply, Grace: o.Grace}},
	}, fmt.Sprintf("leak collector: apply=%t grace=%s", o.Apply, o.Grace))
}

// createEvery creates schedule id, running action every interval (default 1h,
// at least 1m; a run still going when the next is due skips it).
func createEvery(ctx context.Context, c client.Client, id string, every time.Duration, action *client.ScheduleWorkflowAction, note string) error {
	if every == 0 {
		every = time.Hour
	}
	if every < time.Minute {
		return contract.FieldErrors{{Field: "every", Msg: fmt.Sprintf("must be at least 1m, got %s", every)}}
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID:      id,
		Spec:    client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}},
		Action:  action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    note,
	})
	var exists *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &exists) || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return &ExistsError{Name: id}
	}
	return err
}

// DriftScheduleID is the schedule of the drift check.
const DriftScheduleID = "imago-drift"

// CreateDrift schedules the Drift workflow (see workflows.Drift) every interval
// (default 1h) over in's selection: each check updates imago_drift_instances,
// publishes its events and records what imago status shows; it repairs nothing.
func CreateDrift(ctx context.Context, c client.Client, every time.Duration, in contract.DriftInput) error {
	return createEvery(ctx, c, DriftScheduleID, every, &client.ScheduleWorkflowAction{
		ID: "drift", Workflow: workflows.Drift, TaskQueue: contract.TaskQueue, Args: []any{in},
	}, fmt.Sprintf("drift check: service=%q environment=%q", in.Service, in.Environment))
}

// LifecycleScheduleID is the schedule of the image lifecycle sweep.
const LifecycleScheduleID = "imago-image-lifecycle"

// CreateLifecycle schedules the ImageLifecycle workflow (see
// workflows.ImageLifecycle) every interval (default 1h): a dry run that only
// reports unless in.Apply; each sweep's summary is shown by describe.
func CreateLifecycle(ctx context.Context, c client.Client, every time.Duration, in contract.LifecycleInput) error {
	return createEvery(ctx, c, LifecycleScheduleID, every, &client.ScheduleWorkflowAction{
		ID: "image-lifecycle", Workflow: workflows.ImageLifecycle, TaskQueue: contract.TaskQueue, Args: []any{in},
	}, fmt.Sprintf("image lifecycle: apply=%t", in.Apply))
}
