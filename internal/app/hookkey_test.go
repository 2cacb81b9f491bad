package app

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"gocloud.dev/secrets"
	_ "gocloud.dev/secrets/localsecrets"
)

// The hook signing key can come encrypted by a gocloud secrets keeper: the
// worker decrypts IMAGO_HOOK_SECRET with IMAGO_HOOK_SECRET_KEEPER at start, and
// no error shows the key or the keeper's own key.
func TestHookKeyFromASecretsKeeper(t *testing.T) {
	ctx := context.Background()
	const keeperURL = "base64key://smGbjm71Nxd1Ig5FS0wj9SlbzAIrnolCz9bQQ6uAhl4="
	k, err := secrets.OpenKeeper(ctx, keeperURL)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	ct, err := k.Encrypt(ctx, []byte("hook-signing-key"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := hookSigningKey(ctx, keeperURL, base64.StdEncoding.EncodeToString(ct))
	if err != nil || got != "hook-signing-key" {
		t.Fatalf("hookSigningKey = %q, %v; want the decrypted key", got, err)
	}
	if got, err := hookSigningKey(ctx, "", "plain-key"); err != nil || got != "plain-key" {
		t.Fatalf("without a keeper: %q, %v; want IMAGO_HOOK_SECRET as it is", got, err)
	}
	other := "base64key://" + base64.URLEncoding.EncodeToString(make([]byte, 32))
	for _, tc := range []struct{ keeper, secret, want string }{
		{keeperURL, "", "IMAGO_HOOK_SECRET (the key's ciphertext, in base64) is empty"},
		{keeperURL, "not base64!", "IMAGO_HOOK_SECRET is not base64"},
		{other, base64.StdEncoding.EncodeToString(ct), "decrypt IMAGO_HOOK_SECRET with IMAGO_HOOK_SECRET_KEEPER"},
		{"nosuch://keeper", base64.StdEncoding.EncodeToString(ct), "open IMAGO_HOOK_SECRET_KEEPER"},
	} {
		_, err := hookSigningKey(ctx, tc.keeper, tc.secret)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("hookSigningKey(%s): %v, want an error saying %q", tc.keeper, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), "smGbjm71") || strings.Contains(err.Error(), "hook-signing-key")) {
			t.Errorf("error shows a key: %v", err)
		}
	}
}
