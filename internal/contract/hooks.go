package contract

import "slices"

// Hooks are the URLs a rollout calls at its phases (Flagger's and CodeDeploy's
// model): each an HTTP POST of a HookPayload, signed with HMAC-SHA256 (see
// internal/webhook).
type Hooks struct {
	// PreRollout is asked before anything is provisioned: an answer other than
	// 2xx fails the rollout.
	PreRollout string `yaml:"preRollout" json:"preRollout,omitempty"`
	// ConfirmTrafficIncrease is asked before each increase of the new fleet's
	// weight: an answer other than 2xx holds the current weight and asks again
	// every Interval, for at most Timeout.
	ConfirmTrafficIncrease string `yaml:"confirmTrafficIncrease" json:"confirmTrafficIncrease,omitempty"`
	// PostRollout is told of a rollout that succeeded, Rollback of one whose
	// traffic went back to the previous fleet; both with retries, and neither
	// can fail the rollout.
	PostRollout string `yaml:"postRollout" json:"postRollout,omitempty"`
	Rollback    string `yaml:"rollback" json:"rollback,omitempty"`
	// Secret is a secret reference (file:///…, https://…) to the signing key,
	// resolved on the worker; empty: the worker's IMAGO_HOOK_SECRET.
	Secret   string   `yaml:"secret" json:"secret,omitempty"`
	Interval Duration `yaml:"interval" json:"interval,omitempty"` // how often confirmTrafficIncrease is asked again
	Timeout  Duration `yaml:"timeout" json:"timeout,omitempty"`   // how long confirmTrafficIncrease may hold a weight
}

// Hook names: the hook field of a HookPayload, and how messages name them.
const (
	HookPreRollout             = "preRollout"
	HookConfirmTrafficIncrease = "confirmTrafficIncrease"
	HookPostRollout            = "postRollout"
	HookRollback               = "rollback"
)

// URL is the URL of hook name, "" when the spec has none.
func (h *Hooks) URL(name string) string {
	if h == nil {
		return ""
	}
	switch name {
	case HookPreRollout:
		return h.PreRollout
	case HookConfirmTrafficIncrease:
		return h.ConfirmTrafficIncrease
	case HookPostRollout:
		return h.PostRollout
	case HookRollback:
		return h.Rollback
	}
	return ""
}

// HookPayload is the JSON body of a hook's POST.
type HookPayload struct {
	Hook        string `json:"hook"` // preRollout, confirmTrafficIncrease, postRollout, rollback
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Image       string `json:"image,omitempty"`
	Phase       Phase  `json:"phase"`
	// Weights are the route's weights now; Weight is, for
	// confirmTrafficIncrease, the new fleet's weight it asks to go to.
	Weights    []FleetWeight `json:"weights"`
	Weight     int           `json:"weight,omitempty"`
	Fleet      string        `json:"fleet,omitempty"` // the new fleet
	WorkflowID string        `json:"workflowId"`
	RunID      string        `json:"runId"`
	StartedBy  string        `json:"startedBy,omitempty"`
	Message    string        `json:"message,omitempty"` // why a rollout rolled back
	// Timestamp is when this attempt was sent, in Unix seconds (also the
	// X-Imago-Timestamp header): covered by the signature, so a receiver can
	// refuse an old request played again.
	Timestamp int64 `json:"timestamp"`
}

// HookInput asks the RunHook activity to POST Payload to URL.
type HookInput struct {
	URL     string      `json:"url"`
	Secret  string      `json:"secret,omitempty"` // a reference to the signing key (Hooks.Secret); never the key
	Payload HookPayload `json:"payload"`
	// Retry: an answer other than 2xx is an error the activity's retry policy
	// retries (postRollout, rollback); otherwise it is the result.
	Retry bool `json:"retry,omitempty"`
}

// HookResult is how a hook answered.
type HookResult struct {
	Status int    `json:"status"` // the HTTP status
	Answer string `json:"answer"` // the status line, "409 Conflict" (never the body)
}

// OK tells whether the hook said yes (2xx).
func (r HookResult) OK() bool { return r.Status >= 200 && r.Status < 300 }

// NotifyTarget is one recipient of a rollout's notifications.
type NotifyTarget struct {
	URL    string   `yaml:"url" json:"url"`
	On     []Notice `yaml:"on" json:"on,omitempty"`         // default: every notice
	Format string   `yaml:"format" json:"format,omitempty"` // slack (default), teams, json
}

// Notice is what a notification is about.
type Notice string

// Notices.
const (
	NoticeAwaitingApproval Notice = "awaiting-approval"
	NoticeSucceeded        Notice = "succeeded"
	NoticeFailed           Notice = "failed"
	NoticeRolledBack       Notice = "rolled-back"
	NoticeAborted          Notice = "aborted"
)

// Notices are the notices there are.
var Notices = []Notice{NoticeAwaitingApproval, NoticeSucceeded, NoticeFailed, NoticeRolledBack, NoticeAborted}

// Notification formats.
const (
	FormatSlack = "slack" // incoming-webhook JSON {"text", "blocks"}: Slack, Mattermost, Rocket.Chat
	FormatTeams = "teams" // an Office 365 connector MessageCard: Teams' incoming webhooks
	FormatJSON  = "json"  // the CloudEvent, structured mode
)

// Formats are the notification formats there are.
var Formats = []string{FormatSlack, FormatTeams, FormatJSON}

// Wants tells whether t asks for notice n.
func (t NotifyTarget) Wants(n Notice) bool { return len(t.On) == 0 || slices.Contains(t.On, n) }

// NoticeOf is what a rollout's event tells people, if anything: a gate that
// waits for approval, or how the rollout ended. (Canceled rollouts, a
// person's doing, tell nobody.)
func NoticeOf(ev Event) (Notice, bool) {
	switch {
	case ev.Type == EventRolloutPhase && ev.Data.Gate != "":
		return NoticeAwaitingApproval, true
	case ev.Type != EventRolloutFinished:
		return "", false
	}
	switch ev.Data.Outcome {
	case OutcomeSucceeded.MetricLabel():
		return NoticeSucceeded, true
	case OutcomeFailed.MetricLabel():
		return NoticeFailed, true
	case OutcomeRolledBack.MetricLabel():
		return NoticeRolledBack, true
	case OutcomeAborted.MetricLabel():
		return NoticeAborted, true
	}
	return "", false
}

// NotifyInput asks the Notify activity to tell Targets of Event.
type NotifyInput struct {
	Targets []NotifyTarget `json:"targets"`
	Notice  Notice         `json:"notice"`
	Event   Event          `json:"event"`
}

// ErrHook fails RunHook without retry: a URL the outbound guard refuses, no
// signing key.
const ErrHook = "HookRefused"
