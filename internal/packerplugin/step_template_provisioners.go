package packerplugin

import (
	"context"
	"fmt"
	"maps"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// StepTemplateProvisioners runs the provisioners of the template's build block
// (e.g. shell-local) through packer's provision hook, after the provision
// commands and before packing. There is no communicator: provisioners that
// need one (shell, file) fail. ${build.StagingDir} names the staging directory.
//
// Uses:
//
//	hook           packersdk.Hook
//	generated_data map[string]interface{}
//
// Cleanup runs the template's error-cleanup-provisioner when the build failed,
// as the SDK's commonsteps.StepProvision does.
type StepTemplateProvisioners struct{}

func (s *StepTemplateProvisioners) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if err := s.runHook(ctx, state, packersdk.HookProvision); err != nil {
		ui := state.Get("ui").(packersdk.Ui)
		return halt(state, ui, err)
	}
	return multistep.ActionContinue
}

func (s *StepTemplateProvisioners) Cleanup(state multistep.StateBag) {
	origErr, ok := state.GetOk("error")
	if !ok {
		return
	}
	ui := state.Get("ui").(packersdk.Ui)
	ui.Say("Provisioning step had errors: Running the cleanup provisioner, if present...")
	if err := s.runHook(context.Background(), state, packersdk.HookCleanupProvision); err != nil {
		state.Put("error", fmt.Errorf("cleanup failed: %s. Original provisioning error: %s", err, origErr))
	}
}

func (s *StepTemplateProvisioners) runHook(ctx context.Context, state multistep.StateBag, hookType string) error {
	hook := state.Get("hook").(packersdk.Hook)
	ui := state.Get("ui").(packersdk.Ui)
	return hook.Run(ctx, hookType, ui, nil, provisionHookData(state))
}

// provisionHookData is what provisioners see as ${build.*}: the generated data
// plus the values packer expects every builder to provide (the SDK's
// commonsteps.PopulateProvisionHookData, for a builder with no instance, no
// HTTP server and no communicator).
func provisionHookData(state multistep.StateBag) map[string]interface{} {
	data := map[string]interface{}{
		"ID":             "ERR_ID_NOT_IMPLEMENTED_BY_BUILDER",
		"PackerRunUUID":  os.Getenv("PACKER_RUN_UUID"),
		"PackerHTTPIP":   "ERR_HTTP_IP_NOT_IMPLEMENTED_BY_BUILDER",
		"PackerHTTPPort": "ERR_HTTP_PORT_NOT_IMPLEMENTED_BY_BUILDER",
		"PackerHTTPAddr": "ERR_HTTP_ADDR_NOT_IMPLEMENTED_BY_BUILDER",
	}
	if gd, ok := state.GetOk("generated_data"); ok {
		maps.Copy(data, gd.(map[string]interface{}))
	}
	return data
}
