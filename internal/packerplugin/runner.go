package packerplugin

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// newRunner returns the runner for steps, honouring packer build's -debug and
// -on-error flags like the SDK's commonsteps.NewRunner. (commonsteps is not
// used: it drags the go-getter S3/GCS clients into the plugin, which made a
// cold build of the plugin about five times slower.)
//
//	-on-error=cleanup (default)   clean up after a failure
//	-on-error=abort               leave what the failed build made, e.g. the staging directory
//	-on-error=run-cleanup-provisioner  same as abort; the template's error-cleanup-provisioner runs
//	-on-error=ask                 ask whether to clean up, abort or retry the step
func newRunner(steps []multistep.Step, cfg common.PackerConfig, ui packersdk.Ui) multistep.Runner {
	switch cfg.PackerOnError {
	case "abort", "run-cleanup-provisioner":
		for i, s := range steps {
			steps[i] = &abortStep{step: s, ui: ui}
		}
	case "ask":
		for i, s := range steps {
			steps[i] = &askStep{step: s, ui: ui}
		}
	}
	if cfg.PackerDebug {
		return &multistep.DebugRunner{Steps: steps, PauseFn: debugPause(ui)}
	}
	return &multistep.BasicRunner{Steps: steps}
}

func stepName(s multistep.Step) string {
	if w, ok := s.(multistep.StepWrapper); ok {
		return w.InnerStepName()
	}
	return reflect.Indirect(reflect.ValueOf(s)).Type().Name()
}

// failed reports whether the build was halted or cancelled.
func failed(state multistep.StateBag) bool {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return cancelled || halted
}

// abortStep skips its step's Cleanup when the build failed.
type abortStep struct {
	step multistep.Step
	ui   packersdk.Ui
}

func (s *abortStep) InnerStepName() string { return stepName(s.step) }

func (s *abortStep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	return s.step.Run(ctx, state)
}

func (s *abortStep) Cleanup(state multistep.StateBag) {
	// The template's error-cleanup-provisioner still runs.
	if _, ok := s.step.(*StepTemplateProvisioners); ok || !failed(state) {
		s.step.Cleanup(state)
		return
	}
	s.ui.Error(fmt.Sprintf("aborted: skipping cleanup of step %q", stepName(s.step)))
}

// askStep asks what to do when its step halts the build.
type askStep struct {
	step    multistep.Step
	ui      packersdk.Ui
	aborted bool
}

func (s *askStep) InnerStepName() string { return stepName(s.step) }

func (s *askStep) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	for {
		action := s.step.Run(ctx, state)
		if action != multistep.ActionHalt || ctx.Err() != nil {
			return action
		}
		line, err := s.ui.Ask(fmt.Sprintf("Step %q failed. [c] Clean up and exit, [a] abort without cleanup, or [r] retry step?", stepName(s.step)))
		if err != nil {
			return action // no answer: clean up
		}
		switch (line + "c")[0] {
		case 'a', 'A':
			s.aborted = true
			return action
		case 'r', 'R':
			state.Remove("error")
			continue
		default:
			return action
		}
	}
}

func (s *askStep) Cleanup(state multistep.StateBag) {
	if s.aborted {
		s.ui.Error(fmt.Sprintf("aborted: skipping cleanup of step %q", stepName(s.step)))
		return
	}
	s.step.Cleanup(state)
}

// debugPause waits for enter between steps (packer build -debug).
func debugPause(ui packersdk.Ui) multistep.DebugPauseFn {
	return func(loc multistep.DebugLocation, name string, state multistep.StateBag) {
		where := "after run of"
		if loc == multistep.DebugLocationBeforeCleanup {
			where = "before cleanup of"
		}
		answered := make(chan struct{})
		go func() {
			_, _ = ui.Ask(fmt.Sprintf("Pausing %s step '%s'. Press enter to continue.", where, name))
			close(answered)
		}()
		for {
			select {
			case <-answered:
				return
			case <-time.After(100 * time.Millisecond):
				if _, ok := state.GetOk(multistep.StateCancelled); ok {
					return
				}
			}
		}
	}
}
