package local

import "github.com/imago/imago/internal/provider"

// WithEnv returns c with its Home and Images taken from env where c leaves
// them unset: what the local opener, and those of the drivers built on the
// local driver (qemu, libvirt), do with the worker's OpenEnv.
func (c Config) WithEnv(env provider.OpenEnv) Config {
	if c.Home == "" {
		c.Home = env.Home
	}
	if c.Images == nil && env.Images != nil {
		c.Images = env.Images
	}
	return c
}
