package catalog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imago/imago/internal/contract"
)

// TestRecordDriftKeepsTheLatestCheckOwnerOnly: each check replaces the last
// one of its target; on disk it is 0600 in 0700 directories; Deployed lists
// the inventory's targets.
func TestRecordDriftKeepsTheLatestCheckOwnerOnly(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "catalog")
	c := mustOpen(t, "file://"+dir)
	if got, err := c.LastDrift(ctx, "hello", "prod"); err != nil || got != nil {
		t.Fatalf("LastDrift before any check = %v, %v; want nil, nil", got, err)
	}
	checked := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, n := range []int{2, 0} {
		if err := c.RecordDrift(ctx, contract.DriftTarget{Service: "hello", Environment: "prod", Instances: n, Checked: checked.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.LastDrift(ctx, "hello", "prod")
	if err != nil || got == nil || got.Instances != 0 || !got.Checked.Equal(checked.Add(time.Minute)) {
		t.Fatalf("LastDrift = %+v, %v; want the second check", got, err)
	}
	path := filepath.Join(dir, "drift", "prod", "hello.json")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("drift file: %v, %v; want mode 0600", fi, err)
	}
	for _, d := range []string{filepath.Join(dir, "drift"), filepath.Dir(path)} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want mode 0700", d, fi, err)
		}
	}
	if err := c.RecordDrift(ctx, contract.DriftTarget{Service: "../x", Environment: "prod"}); err == nil {
		t.Error("a bad service name was recorded")
	}

	if _, err := c.RecordDeployment(ctx, contract.Deployment{Service: "hello", Environment: "prod", ImageID: "img-1", Outcome: contract.OutcomeSucceeded}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RecordDeployment(ctx, contract.Deployment{Service: "web", Environment: "dev", ImageID: "img-2", Outcome: contract.OutcomeSucceeded}); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Deployed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []contract.RouteKey{{Service: "web", Environment: "dev"}, {Service: "hello", Environment: "prod"}}
	if len(keys) != 2 || keys[0] != want[0] || keys[1] != want[1] {
		t.Errorf("Deployed = %v, want %v", keys, want)
	}
}
