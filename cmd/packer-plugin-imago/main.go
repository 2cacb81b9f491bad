// Command packer-plugin-imago is imago's Packer plugin. It serves one builder,
// "local", which templates name "imago-local" (plugin name + "-" + builder):
//
//	packer {
//	  required_plugins {
//	    imago = { source = "github.com/imago/imago", version = ">= 0.1.0" }
//	  }
//	}
//
//	source "imago-local" "hello" { service = "hello" ... }
//
// Install a locally built binary with
//
//	go build -o packer-plugin-imago ./cmd/packer-plugin-imago
//	packer plugins install --path ./packer-plugin-imago github.com/imago/imago
//
// Packer takes the plugin's name from the last part of the source address
// ("imago"), installs the binary as
// <plugin dir>/github.com/imago/imago/packer-plugin-imago_v<version>_x5.0_<os>_<arch>
// with a _SHA256SUM file beside it, and finds it there on every run (the plugin
// directory is $PACKER_PLUGIN_PATH, else under $PACKER_CONFIG_DIR or the home
// directory; see README.md).
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"
	"github.com/hashicorp/packer-plugin-sdk/version"

	"github.com/imago/imago/internal/packerplugin"
)

// Version is the plugin's version, reported to packer by `describe`. Packer
// installs only releases (1.2.3) and development builds (1.2.3-dev) from a path.
var (
	Version           = "0.1.0"
	VersionPrerelease = ""
	PluginVersion     = version.NewPluginVersion(Version, VersionPrerelease, "")
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("local", new(packerplugin.Builder))
	pps.SetVersion(PluginVersion)
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
