// Package uitest drives the Temporal web UI that imago-worker embeds in a real
// headless Chromium (chromedp): it rolls out a real image and checks that the UI
// lists the rollout and shows its summary, which only the codec server can
// decrypt. The tests need Debian's chromium (make deps); they write the
// screenshots in docs/ when IMAGO_UPDATE_SCREENSHOTS=1.
package uitest
