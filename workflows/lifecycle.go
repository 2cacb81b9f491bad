package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/imago/imago/internal/contract"
)

// ImageLifecycle applies the image lifecycle rules (imago image lifecycle set):
// it lists what each rule keeps (and why), deprecates and deletes — or, by
// default, only reports what it would. Like the Reaper, run it on a schedule
// (imago image lifecycle schedule).
func ImageLifecycle(ctx workflow.Context, in contract.LifecycleInput) (contract.LifecycleResult, error) {
	res := contract.LifecycleResult{DryRun: !in.Apply}
	if err := workflow.ExecuteActivity(quickOptions(ctx, "plan the image lifecycle rules"), contract.ActivityPlanLifecycle).
		Get(ctx, &res.Decisions); err != nil {
		return res, err
	}
	var todo []contract.LifecycleDecision
	kept := 0
	for _, d := range res.Decisions {
		if d.Action == contract.LifecycleKeep {
			kept++
		} else {
			todo = append(todo, d)
		}
	}
	if !in.Apply || len(todo) == 0 {
		res.Summary = fmt.Sprintf("dry run: would %s; kept %d", actions(todo), kept)
		if in.Apply {
			res.Summary = fmt.Sprintf("nothing to deprecate or delete; kept %d", kept)
		}
		workflow.SetCurrentDetails(ctx, res.Summary)
		return res, nil
	}
	for _, d := range todo {
		err := workflow.ExecuteActivity(quickOptions(ctx, fmt.Sprintf("%s %s (%s)", d.Action, d.ImageID, d.Why)),
			contract.ActivityApplyLifecycle, contract.ApplyLifecycleInput{Decision: d}).Get(ctx, nil)
		if temporal.IsCanceledError(err) {
			return res, err // the rest stays for the next sweep
		}
		if err != nil {
			if res.Failed == nil {
				res.Failed = map[string]string{}
			}
			res.Failed[d.ImageID] = reason(err)
			continue
		}
		if d.Action == contract.LifecycleDelete {
			res.Deleted = append(res.Deleted, d.ImageID)
		} else {
			res.Deprecated = append(res.Deprecated, d.ImageID)
		}
	}
	res.Summary = fmt.Sprintf("deprecated %d %v, deleted %d %v; kept %d", len(res.Deprecated), nonNilStrings(res.Deprecated), len(res.Deleted), nonNilStrings(res.Deleted), kept)
	var why []string
	for _, d := range todo { // in decision order: no map order in workflow code
		if r, ok := res.Failed[d.ImageID]; ok {
			why = append(why, d.ImageID+": "+r)
		}
	}
	if len(why) > 0 {
		res.Summary += fmt.Sprintf("; %d not done (%s)", len(why), strings.Join(why, "; "))
	}
	workflow.SetCurrentDetails(ctx, res.Summary)
	return res, nil
}

// actions says what a dry run would do: "deprecate 1 [img-a], delete 2 [img-b img-c]".
func actions(todo []contract.LifecycleDecision) string {
	var dep, del []string
	for _, d := range todo {
		if d.Action == contract.LifecycleDelete {
			del = append(del, d.ImageID)
		} else {
			dep = append(dep, d.ImageID)
		}
	}
	return fmt.Sprintf("deprecate %d %v, delete %d %v", len(dep), nonNilStrings(dep), len(del), nonNilStrings(del))
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
