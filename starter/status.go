package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/imago/imago/internal/catalog"
	"github.com/imago/imago/internal/contract"
)

// serviceStatus is what `imago status -o json` prints.
type serviceStatus struct {
	Service      string      `json:"service"`
	Environments []envStatus `json:"environments"`
}

type envStatus struct {
	Environment string                `json:"environment"`
	Live        *contract.Deployment  `json:"live"`           // null while nothing succeeded there
	Last        *contract.Deployment  `json:"last,omitempty"` // the newest deployment, when it is not the live one
	History     []contract.Deployment `json:"history,omitempty"`
	Drift       *contract.DriftTarget `json:"drift,omitempty"` // the latest drift check, when one ran (imago drift)
}

func newStatusCmd() *cobra.Command {
	var env string
	var history int
	cmd := &cobra.Command{
		Use:   "status SERVICE [-e ENV] [--history N]",
		Short: "Show the live image of a service in each environment, and its deployment history",
		Long: `Shows, for each environment the service was deployed to (or only ENV), which
image is live, since when, through which rollout and run, started by whom and with
which strategy, and, when the newest deployment did not go live, what it did
(failed, was rolled back, ...); with --history N also its last N deployments
(rollouts and rollbacks, with their outcome and reason). It reads the inventory in the image
catalog (IMAGO_CATALOG_URL), not Temporal, so it works while no server runs.`,
		Example: `  imago status hello
  imago status hello -e prod --history 10
  imago status hello -o json`,
		Args:              args(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServiceArg,
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if history < 0 {
			return usageError{fmt.Errorf("--history %d: want a number of deployments, 0 or more", history)}
		}
		service := a[0]
		return withCatalog(cmd, func(cat *catalog.Catalog) error {
			st, err := readStatus(cmd, cat, service, env, history)
			if errors.Is(err, catalog.ErrInvalidDeployment) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if out.json() {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd, st, history)
		})
	}
	addEnvFlag(cmd, &env, "", "only this environment (default: every environment the service was deployed to)")
	cmd.Flags().IntVar(&history, "history", 0, "also show the last N deployments of each environment")
	return cmd
}

func readStatus(cmd *cobra.Command, cat *catalog.Catalog, service, env string, history int) (serviceStatus, error) {
	ctx := cmd.Context()
	envs, err := cat.Environments(ctx, service)
	if err != nil {
		return serviceStatus{}, err
	}
	if env != "" {
		found := false
		for _, e := range envs {
			found = found || e == env
		}
		if !found {
			// Let the catalog validate env and say how to deploy there.
			_, err := cat.History(ctx, service, env, 1)
			if err == nil || errors.Is(err, catalog.ErrNotFound) {
				err = notDeployed(service, env, envs)
			}
			return serviceStatus{}, err
		}
		envs = []string{env}
	}
	if len(envs) == 0 {
		return serviceStatus{}, notDeployed(service, "", nil)
	}
	st := serviceStatus{Service: service, Environments: make([]envStatus, 0, len(envs))}
	for _, e := range envs {
		es := envStatus{Environment: e}
		live, err := cat.Live(ctx, service, e)
		switch {
		case err == nil:
			es.Live = &live
		case !errors.Is(err, catalog.ErrNotFound):
			return serviceStatus{}, err
		}
		hist, err := cat.History(ctx, service, e, max(history, 1))
		if err != nil {
			return serviceStatus{}, err
		}
		if len(hist) > 0 && (es.Live == nil || hist[0].Seq != es.Live.Seq) {
			es.Last = &hist[0]
		}
		if history > 0 {
			es.History = hist
		}
		if es.Drift, err = cat.LastDrift(ctx, service, e); err != nil {
			return serviceStatus{}, err
		}
		st.Environments = append(st.Environments, es)
	}
	return st, nil
}

// notDeployed says that service has no deployment (in env, when set) and how to make one.
func notDeployed(service, env string, elsewhere []string) error {
	if env == "" {
		return fmt.Errorf("%s has never been deployed (the inventory has no deployment of it); deploy it with: imago rollout start -f FILE (a spec with service: %s)", service, service)
	}
	where := ""
	if len(elsewhere) > 0 {
		where = fmt.Sprintf(" (it is deployed to %s)", strings.Join(elsewhere, ", "))
	}
	return fmt.Errorf("%s has never been deployed to %s%s; deploy it with: imago rollout start -f FILE (a spec with service: %s, environment: %s)", service, env, where, service, env)
}

func printStatus(cmd *cobra.Command, st serviceStatus, history int) error {
	w := cmd.OutOrStdout()
	tw := table(w)
	fmt.Fprintln(tw, "ENVIRONMENT\tIMAGE\tSINCE\tROLLOUT\tRUN\tSTARTED BY\tSTRATEGY")
	for _, es := range st.Environments {
		d := es.Live
		if d == nil {
			fmt.Fprintf(tw, "%s\t(none live; last %s %s)\t-\t-\t-\t-\t-\n", es.Environment, es.Last.Outcome, es.Last.ImageID)
			continue
		}
		rollout := dash(d.RolloutID)
		if d.Action == contract.ActionRollback {
			rollout += " (rollback)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", es.Environment, d.ImageID, when(d.Since()), rollout, dash(d.RunID), dash(d.StartedBy), dash(d.Strategy))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, es := range st.Environments {
		if es.Last != nil && es.Live != nil {
			fmt.Fprintf(w, "%s: %s; %s\n", es.Environment, serving(*es.Live), lastAttempt(*es.Last, *es.Live))
		}
	}
	for _, es := range st.Environments {
		if es.Drift != nil {
			fmt.Fprintf(w, "%s: %s\n", es.Environment, driftLine(*es.Drift))
		}
	}
	if history == 0 {
		return nil
	}
	for _, es := range st.Environments {
		what := fmt.Sprintf("the last %d deployments", len(es.History))
		if len(es.History) == 1 {
			what = "the last deployment"
		}
		fmt.Fprintf(w, "\n%s: %s of %s\n", es.Environment, what, st.Service)
		tw := table(w)
		fmt.Fprintln(tw, "TIME\tACTION\tIMAGE\tOUTCOME\tBY\tREASON")
		for _, d := range es.History {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(d.Since()), d.Action, d.ImageID, d.Outcome, dash(d.StartedBy), dash(d.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// serving says which image serves and since when: "img-v2 serves, live since
// 2026-03-01 13:10:00 (run run-2)".
func serving(live contract.Deployment) string {
	return fmt.Sprintf("%s serves, live since %s%s", live.ImageID, when(live.Since()), runOf(live))
}

// lastAttempt says what the newest deployment, one that is not live, did, apart
// from what serves, so that a re-rollout of the serving image that was rolled
// back does not read as if that image had been rolled back: "the last rollout
// (run run-5), of img-v2 again, was rolled back at 2026-03-01 15:10:00: why".
func lastAttempt(last, live contract.Deployment) string {
	action, prep := last.Action, "of"
	if action == "" {
		action = contract.ActionRollout
	}
	if action == contract.ActionRollback {
		prep = "to"
	}
	img := last.ImageID
	if img == live.ImageID {
		img += " again"
	}
	did := last.Outcome
	switch last.Outcome {
	case contract.OutcomeRolledBack:
		did = "was rolled back"
	case contract.OutcomeAborted:
		did = "was aborted"
	case contract.OutcomeCanceled:
		did = "was canceled"
	}
	out := fmt.Sprintf("the last %s%s, %s %s, %s at %s", action, runOf(last), prep, img, did, when(last.Since()))
	if last.Reason != "" {
		out += ": " + last.Reason
	}
	return out
}

func runOf(d contract.Deployment) string {
	if d.RunID == "" {
		return ""
	}
	return " (run " + d.RunID + ")"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// driftLine says what the latest drift check found: "drift: 1 instance (instance
// i-2 of live fleet f-1 is exited (signal: killed)), checked at ...; repair with: ...".
func driftLine(t contract.DriftTarget) string {
	at := "checked at " + when(t.Checked)
	switch {
	case t.Skipped != "":
		return "drift not checked (" + t.Skipped + "), " + at
	case !t.Drifted():
		return "no drift, " + at
	}
	what := make([]string, len(t.Items))
	for i, it := range t.Items {
		what[i] = it.Detail
	}
	n := fmt.Sprintf("%d instances", t.Instances)
	if t.Instances == 1 {
		n = "1 instance"
	}
	return fmt.Sprintf("drift: %s (%s), %s; repair with: imago drift --service %s -e %s --repair", n, strings.Join(what, "; "), at, t.Service, t.Environment)
}
