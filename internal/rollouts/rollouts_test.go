package rollouts

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/imago/imago/internal/contract"
)

func TestResultOfReadsTheRolloutResultInAFailuresDetails(t *testing.T) {
	want := contract.RolloutResult{ImageID: "img-2", FleetID: "fl-new", Instances: 3, BakeTime: &contract.BakeTimeResult{
		Analysis: "errors", Phase: "Failed", Failed: &contract.Measurement{Phase: "Failed", Message: "0.31 > max 0.05"}}}
	err := temporal.NewNonRetryableApplicationError("rolled back automatically", "RolledBack", nil, want)
	got := ResultOf(errors.Join(errors.New("workflow execution error"), err))
	if got == nil || got.FleetID != "fl-new" || got.BakeTime == nil || got.BakeTime.Failed == nil || got.BakeTime.Failed.Message != "0.31 > max 0.05" {
		t.Fatalf("ResultOf = %+v, want %+v", got, want)
	}
	for _, none := range []error{
		errors.New("plain"),
		temporal.NewNonRetryableApplicationError("failed while provisioning", "RolloutFailed", nil),
	} {
		if got := ResultOf(none); got != nil {
			t.Errorf("ResultOf(%v) = %+v, want nil", none, got)
		}
	}
}
