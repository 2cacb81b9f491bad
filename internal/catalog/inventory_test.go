package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

func record(t *testing.T, c *Catalog, d contract.Deployment) contract.Deployment {
	t.Helper()
	if d.Service == "" {
		d.Service = "hello"
	}
	if d.Environment == "" {
		d.Environment = "prod"
	}
	got, err := c.RecordDeployment(context.Background(), d)
	if err != nil {
		t.Fatalf("RecordDeployment(%+v): %v", d, err)
	}
	return got
}

func deploymentSummary(ds []contract.Deployment) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%d:%s:%s:%s<-%s", d.Seq, d.Action, d.ImageID, d.Outcome, d.Previous))
	}
	return out
}

func TestInventoryRecordLiveHistory(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		for _, id := range []string{"img-v1", "img-v2", "img-v3"} {
			publish(t, c, contract.Image{ID: id, Service: "hello"})
		}

		_, err := c.Live(ctx, "hello", "prod")
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("Live before any deployment = %v, want ErrNotFound", err)
		}
		wantErr(t, err, "no deployment of hello to prod", "imago rollout start -f FILE")
		if _, err := c.History(ctx, "hello", "prod", 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("History before any deployment = %v, want ErrNotFound", err)
		}
		if envs, err := c.Environments(ctx, "hello"); err != nil || len(envs) != 0 {
			t.Errorf("Environments before any deployment = %v, %v", envs, err)
		}

		// A failed first rollout: recorded, but nothing is live.
		started := time.Now().Add(-time.Minute)
		f := record(t, c, contract.Deployment{ImageID: "img-v1", RunID: "run-0", Outcome: contract.OutcomeFailed, Reason: "health timeout", Started: started})
		if f.Seq != 1 || f.Action != contract.ActionRollout || f.Finished.IsZero() || f.Previous != "" || f.Started.Location() != time.UTC {
			t.Fatalf("failed record = %+v", f)
		}
		_, err = c.Live(ctx, "hello", "prod")
		wantErr(t, err, "no successful deployment of hello to prod", "1 recorded, the last failed")

		d1 := record(t, c, contract.Deployment{ImageID: "img-v1", FleetID: "fl-1", RolloutID: "rollout/prod/hello", RunID: "run-1",
			StartedBy: "alice@host", Strategy: "blueGreen", Outcome: contract.OutcomeSucceeded, Started: started})
		d2 := record(t, c, contract.Deployment{ImageID: "img-v2", RunID: "run-2", StartedBy: "bob", Outcome: contract.OutcomeSucceeded})
		// v3 cut over, then verification failed and it handed the traffic back.
		record(t, c, contract.Deployment{ImageID: "img-v3", RunID: "run-3", Outcome: contract.OutcomeRolledBack, Reason: "error rate 7% > 1%"})
		if d1.Seq != 2 || d2.Seq != 3 || d2.Previous != "img-v1" {
			t.Fatalf("records = %+v, %+v", d1, d2)
		}

		live, err := c.Live(ctx, "hello", "prod")
		if err != nil || live.ImageID != "img-v2" || live.Seq != 3 || live.StartedBy != "bob" {
			t.Fatalf("Live = %+v, %v; want img-v2 at seq 3", live, err)
		}
		// A run that succeeded and was rolled back afterwards is not live any more.
		record(t, c, contract.Deployment{ImageID: "img-v3", RunID: "run-4", Outcome: contract.OutcomeSucceeded})
		record(t, c, contract.Deployment{ImageID: "img-v3", RunID: "run-4", Outcome: contract.OutcomeRolledBack, Previous: "img-v2", Reason: "rollback during soak"})
		if live, err := c.Live(ctx, "hello", "prod"); err != nil || live.ImageID != "img-v2" {
			t.Fatalf("Live after a rolled-back run = %+v, %v; want img-v2", live, err)
		}
		rb := record(t, c, contract.Deployment{ImageID: "img-v1", RunID: "run-5", Action: contract.ActionRollback, Outcome: contract.OutcomeSucceeded, Reason: "bad v2"})
		if rb.Previous != "img-v2" {
			t.Errorf("rollback Previous = %q, want img-v2", rb.Previous)
		}
		if live, err := c.Live(ctx, "hello", "prod"); err != nil || live.ImageID != "img-v1" || live.Action != contract.ActionRollback {
			t.Fatalf("Live after rollback = %+v, %v; want img-v1", live, err)
		}

		hist, err := c.History(ctx, "hello", "prod", 0)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "history", deploymentSummary(hist), []string{
			"7:rollback:img-v1:succeeded<-img-v2",
			"6:rollout:img-v3:rolled-back<-img-v2",
			"5:rollout:img-v3:succeeded<-img-v2",
			"4:rollout:img-v3:rolled-back<-img-v2",
			"3:rollout:img-v2:succeeded<-img-v1",
			"2:rollout:img-v1:succeeded<-",
			"1:rollout:img-v1:failed<-",
		})
		first := hist[len(hist)-2]
		if first.FleetID != "fl-1" || first.RolloutID != "rollout/prod/hello" || first.Strategy != "blueGreen" || !first.Started.Equal(started.UTC()) {
			t.Errorf("stored record lost fields: %+v", first)
		}
		hist, err = c.History(ctx, "hello", "prod", 2)
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "history limit 2", deploymentSummary(hist), []string{
			"7:rollback:img-v1:succeeded<-img-v2", "6:rollout:img-v3:rolled-back<-img-v2",
		})

		record(t, c, contract.Deployment{Environment: "dev", ImageID: "img-v3", RunID: "run-d", Outcome: contract.OutcomeSucceeded})
		record(t, c, contract.Deployment{Service: "api", Environment: "staging", ImageID: "img-v3", RunID: "run-a", Outcome: contract.OutcomeSucceeded})
		envs, err := c.Environments(ctx, "hello")
		if err != nil {
			t.Fatal(err)
		}
		sameIDs(t, "environments", envs, []string{"dev", "prod"})
		if _, err := c.Live(ctx, "hello", "staging"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Live in an environment of another service = %v, want ErrNotFound", err)
		}

		for _, bad := range []contract.Deployment{
			{Service: "hello", Environment: "prod", ImageID: "img-v1"},                                        // no outcome
			{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: "ok"},                         // bad outcome
			{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: "failed", Action: "redeploy"}, // bad action
			{Service: "hello", Environment: "", ImageID: "img-v1", Outcome: "failed"},                         // no env
			{Service: "hello", Environment: "../x", ImageID: "img-v1", Outcome: "failed"},                     // bad env
			{Service: "hello", Environment: "prod", ImageID: "not an id", Outcome: "failed"},                  // bad image
			{Service: "", Environment: "prod", ImageID: "img-v1", Outcome: "failed"},                          // no service
			{Service: "hello", Environment: "prod", ImageID: "img-v1", Outcome: "failed", Previous: "x/../y"}, // bad previous
		} {
			if _, err := c.RecordDeployment(ctx, bad); !errors.Is(err, ErrInvalidDeployment) {
				t.Errorf("RecordDeployment(%+v) = %v, want ErrInvalidDeployment", bad, err)
			}
		}
	})
}

// TestInventoryRecordIsIdempotentPerRun: a retried activity (same run, same
// outcome) adds no second entry, sequentially and when the retry races the first
// attempt.
func TestInventoryRecordIsIdempotentPerRun(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		first := record(t, c, contract.Deployment{ImageID: "img-v1", RunID: "run-1", Outcome: contract.OutcomeSucceeded, Reason: "first attempt"})
		record(t, c, contract.Deployment{ImageID: "img-v2", RunID: "run-2", Outcome: contract.OutcomeFailed})
		retry := record(t, c, contract.Deployment{ImageID: "img-v1", RunID: "run-1", Outcome: contract.OutcomeSucceeded, Reason: "retry"})
		if retry.Seq != first.Seq || retry.Reason != "first attempt" || !retry.Finished.Equal(first.Finished) {
			t.Errorf("retry = %+v, want the first attempt's entry %+v", retry, first)
		}
		// The same run with another outcome is another event.
		rolled := record(t, c, contract.Deployment{ImageID: "img-v1", RunID: "run-1", Outcome: contract.OutcomeRolledBack})
		if rolled.Seq != 3 {
			t.Errorf("rolled-back record of run-1 = seq %d, want 3", rolled.Seq)
		}

		var wg sync.WaitGroup
		got := make([]contract.Deployment, 10)
		errs := make([]error, 10)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = c.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-v3", RunID: "run-3", Outcome: contract.OutcomeSucceeded})
			}()
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i].Seq != 4 {
				t.Errorf("racing retry %d = seq %d, %v; want seq 4", i, got[i].Seq, errs[i])
			}
		}
		hist, err := c.History(ctx, "hello", "prod", 0)
		if err != nil || len(hist) != 4 {
			t.Errorf("history = %v, %v; want 4 entries", deploymentSummary(hist), err)
		}
	})
}

// TestInventoryConcurrentRecords records 10 deployments at once from 10
// goroutines, on the file bucket each through its own handle (as separate worker
// processes would). None may be lost: the history has every one, seqs 1..10.
func TestInventoryConcurrentRecords(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := d.open(t)
			const n = 10
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for g := 0; g < n; g++ {
				c := open()
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := c.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "prod",
						ImageID: fmt.Sprintf("img-g%02d", g), RunID: fmt.Sprintf("run-%02d", g), Outcome: contract.OutcomeSucceeded})
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			hist, err := open().History(ctx, "hello", "prod", 0)
			if err != nil {
				t.Fatal(err)
			}
			runs := map[string]bool{}
			for i, e := range hist {
				if want := int64(n - i); e.Seq != want {
					t.Errorf("entry %d has seq %d, want %d", i, e.Seq, want)
				}
				runs[e.RunID] = true
				// Previous chains the log: each entry names the image of the one before.
				if i+1 < len(hist) && e.Previous != hist[i+1].ImageID {
					t.Errorf("seq %d: Previous = %q, want %q (the image of seq %d)", e.Seq, e.Previous, hist[i+1].ImageID, hist[i+1].Seq)
				}
			}
			if len(hist) != n || len(runs) != n {
				t.Errorf("history has %d entries of %d runs, want %d: %v", len(hist), len(runs), n, deploymentSummary(hist))
			}
		})
	}
}

func TestInventoryDeployable(t *testing.T) {
	eachDriver(t, func(t *testing.T, c *Catalog) {
		ctx := context.Background()
		if ids, err := c.Deployable(ctx, "hello", "prod", 5); err != nil || len(ids) != 0 {
			t.Errorf("Deployable before any deployment = %v, %v", ids, err)
		}
		for _, id := range []string{"img-v1", "img-v2", "img-v3", "img-v4", "img-v5", "img-v6"} {
			publish(t, c, contract.Image{ID: id, Service: "hello"})
		}
		publish(t, c, contract.Image{ID: "img-api", Service: "api"})
		for i, step := range []struct {
			image   string
			outcome contract.Outcome
		}{
			{"img-v1", contract.OutcomeSucceeded},
			{"img-v2", contract.OutcomeSucceeded},
			{"img-v1", contract.OutcomeSucceeded},  // v1 again: a duplicate, counted once, at its newest
			{"img-v3", contract.OutcomeSucceeded},  // revoked below
			{"img-v4", contract.OutcomeFailed},     // never took traffic
			{"img-v5", contract.OutcomeRolledBack}, // handed the traffic back
			{"img-gone", contract.OutcomeSucceeded},
			{"img-api", contract.OutcomeSucceeded}, // another service's image
			{"img-v6", contract.OutcomeSucceeded},
		} {
			record(t, c, contract.Deployment{ImageID: step.image, RunID: fmt.Sprintf("run-%d", i), Outcome: step.outcome})
		}
		if _, err := c.Revoke(ctx, "img-v3", RevokeOptions{Reason: "CVE"}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			keep int
			want []string
		}{
			{0, []string{"img-v6", "img-v1", "img-v2"}},
			{1, []string{"img-v6"}},
			{2, []string{"img-v6", "img-v1"}},
			{5, []string{"img-v6", "img-v1", "img-v2"}},
		} {
			got, err := c.Deployable(ctx, "hello", "prod", tc.keep)
			if err != nil {
				t.Fatal(err)
			}
			sameIDs(t, fmt.Sprintf("Deployable keep %d", tc.keep), got, tc.want)
		}
		if _, err := c.Deployable(ctx, "hello", "no/such", 1); !errors.Is(err, ErrInvalidDeployment) {
			t.Errorf("Deployable with a bad environment = %v, want ErrInvalidDeployment", err)
		}
	})
}
