package image

import (
	"strings"
	"testing"
)

// The ID of a plain local image is what every catalog recorded: it must never
// change, or recorded rollouts, channels and workflow histories stop resolving.
func TestALocalImageKeepsItsID(t *testing.T) {
	const digest = "sha256:ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	const golden = "img-62f697db36ba" // ID's answer since the first catalog
	ep := []string{"./hello"}
	if got := ID(digest, "hello", ep); got != golden {
		t.Fatalf("ID = %s, want %s", got, golden)
	}
	for _, id := range []Identity{
		{Digest: digest, Service: "hello", Entrypoint: ep},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "local"},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "local", InputDigest: "sha256:" + digest[7:]},
	} {
		if got := id.ID(); got != golden {
			t.Errorf("%+v: ID = %s, want the local image's %s", id, got, golden)
		}
	}
}

func TestTheIdentityCoversTheFormatAndTheOCIBase(t *testing.T) {
	const digest = "sha256:ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
	in1, in2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	base1, base2 := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	ep := []string{"./hello"}
	local := ID(digest, "hello", ep)
	ids := map[string]Identity{}
	for _, id := range []Identity{
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "oci", InputDigest: in1},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "oci", InputDigest: in2},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "oci", InputDigest: in1, BaseDigest: base1},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "oci", InputDigest: in1, BaseDigest: base2},
		{Digest: digest, Service: "hello", Entrypoint: ep, Format: "vm", InputDigest: in1},
	} {
		got := id.ID()
		if got == local {
			t.Errorf("%+v has the local image's ID %s", id, got)
		}
		if other, ok := ids[got]; ok {
			t.Errorf("%+v and %+v share the ID %s", id, other, got)
		}
		ids[got] = id
		if again := id.ID(); again != got {
			t.Errorf("%+v: ID %s, then %s", id, got, again)
		}
	}
	// A VM disk does not carry the inputs: the same files are the same VM image.
	vm := Identity{Digest: digest, Service: "hello", Entrypoint: ep, Format: "vm"}
	if a, b := vm.ID(), (Identity{Digest: digest, Service: "hello", Entrypoint: ep, Format: "vm", InputDigest: in2}).ID(); a != b {
		t.Errorf("VM images of the same files: %s and %s", a, b)
	}
}
