package api

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/imago/imago/internal/campaigns"
	"github.com/imago/imago/internal/contract"
	"github.com/imago/imago/internal/drift"
	"github.com/imago/imago/internal/freezes"
	"github.com/imago/imago/internal/plan"
	"github.com/imago/imago/internal/rollouts"
	"github.com/imago/imago/internal/spec"
)

type openAPIDoc struct {
	OpenAPI string                                 `json:"openapi"`
	Paths   map[string]map[string]openAPIOperation `json:"paths"`
	Comps   struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string `json:"operationId"`
	Scope       string `json:"x-imago-scope"`
	Security    *[]any `json:"security"`
	Parameters  []struct {
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"parameters"`
	Responses map[string]json.RawMessage `json:"responses"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	return doc
}

// Every route the server registers is documented, and every documented path and
// method is registered; both lists are compared as they are, not copied.
func TestOpenAPIDocumentsExactlyTheRegisteredRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	assert.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "an OpenAPI 3 document")

	var registered, documented []string
	for _, rt := range NewServer(Config{}).table {
		registered = append(registered, rt.method+" "+rt.path)
	}
	wildcard := regexp.MustCompile(`\{([a-z]+)\}`)
	ids := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			assert.NotEmpty(t, op.OperationID, "%s %s has an operationId", method, path)
			assert.False(t, ids[op.OperationID], "operationId %s is unique", op.OperationID)
			ids[op.OperationID] = true
			var params []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					params = append(params, p.Name)
				}
			}
			var want []string
			for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
				want = append(want, m[1])
			}
			assert.ElementsMatch(t, want, params, "%s %s declares its path parameters", method, path)
			assert.NotEmpty(t, op.Responses, "%s %s has responses", method, path)
		}
	}
	sort.Strings(registered)
	sort.Strings(documented)
	assert.Equal(t, registered, documented)
}

// The document says which routes need no token, as the server does.
func TestOpenAPIMarksThePublicRoutes(t *testing.T) {
	doc := readOpenAPI(t)
	for _, rt := range NewServer(Config{}).table {
		op := doc.Paths[rt.path][strings.ToLower(rt.method)]
		public := op.Security != nil && len(*op.Security) == 0
		assert.Equal(t, rt.public, public, "%s %s: public in the server, security: [] in the document", rt.method, rt.path)
		if !rt.public {
			assert.Contains(t, op.Responses, "401", "%s %s documents its 401", rt.method, rt.path)
		}
	}
}

// The document names each route's scope as the table does, and documents the
// 403 every route may answer (a foreign Origin, a missing scope) and the 415 of
// every POST, PUT and DELETE.
func TestOpenAPINamesEachRoutesScope(t *testing.T) {
	doc := readOpenAPI(t)
	for _, rt := range NewServer(Config{}).table {
		op := doc.Paths[rt.path][strings.ToLower(rt.method)]
		assert.Equal(t, string(rt.scope), op.Scope, "%s %s: x-imago-scope", rt.method, rt.path)
		assert.Contains(t, op.Responses, "403", "%s %s documents its 403", rt.method, rt.path)
		if rt.method != "GET" {
			assert.Contains(t, op.Responses, "415", "%s %s documents its 415", rt.method, rt.path)
		}
	}
}

// The schemas name exactly the JSON fields of the types the API reads and writes.
func TestOpenAPISchemasMatchTheWireTypes(t *testing.T) {
	doc := readOpenAPI(t)
	for name, v := range map[string]any{
		"Problem": Problem{}, "FieldError": contract.FieldError{},
		"StartRolloutRequest": StartRolloutRequest{}, "RolloutSpec": spec.Rollout{}, "ImageRef": contract.ImageRef{},
		"Fleet": contract.FleetSpec{}, "Health": contract.Health{}, "Check": contract.Check{}, "Strategy": contract.Strategy{}, "Step": contract.Step{},
		"Pause": contract.Pause{}, "Analysis": contract.Analysis{}, "Approval": contract.ApprovalSpec{}, "Verify": contract.Verify{}, "Hooks": contract.Hooks{}, "NotifyTarget": contract.NotifyTarget{},
		"BakeTime": contract.BakeTime{}, "BakeTimeResult": contract.BakeTimeResult{},
		"StartedRollout": StartedRollout{}, "Links": Links{}, "RolloutStatus": rollouts.Status{}, "Progress": contract.RolloutProgress{},
		"Event": contract.ProgressEvent{}, "FleetWeight": contract.FleetWeight{}, "GateApproval": contract.Approval{},
		"AnalysisRun": contract.AnalysisRun{}, "AnalysisCounts": contract.AnalysisCounts{}, "Measurement": contract.Measurement{},
		"CompareMetric": contract.CompareMetric{}, "Judgment": contract.Judgment{}, "MetricJudgment": contract.MetricJudgment{}, "GroupScore": contract.GroupScore{},
		"RolloutSummary": rollouts.Summary{}, "RolloutList": RolloutList{},
		"RolloutResult": contract.RolloutResult{}, "RolloutDone": RolloutDone{}, "DecisionRequest": DecisionRequest{},
		"Decided": Decided{}, "StartBakeRequest": StartBakeRequest{}, "BakeSpec": spec.Bake{}, "ImageTest": contract.ImageTest{},
		"StartedBake": StartedBake{}, "BakeStatus": BakeStatus{}, "BakeProgress": contract.BakeProgress{},
		"BakeResult": contract.BakeResult{}, "Image": contract.Image{}, "Revocation": contract.Revocation{},
		"Outdated": contract.Outdated{}, "ImageList": ImageList{}, "ImageDetail": ImageDetail{},
		"PromoteRequest": PromoteRequest{}, "RevokeRequest": RevokeRequest{}, "Revoked": Revoked{},
		"ChannelEntry": contract.ChannelEntry{}, "ChannelList": ChannelList{}, "ChannelHistory": ChannelHistory{},
		"Window": contract.Window{}, "Hold": contract.Hold{}, "Freeze": contract.Freeze{}, "FreezeList": FreezeList{},
		"FreezeRequest": FreezeRequest{}, "FreezeEnded": freezes.Ended{},
		"CampaignSpec": contract.CampaignSpec{}, "CampaignSelect": contract.CampaignSelect{}, "CampaignImage": contract.CampaignImage{}, "CampaignRing": contract.Ring{},
		"ErrorBudget": contract.ErrorBudget{}, "CampaignFleet": contract.CampaignFleet{}, "CampaignOverride": contract.CampaignOverride{},
		"StartedCampaign": StartedCampaign{}, "CampaignTarget": contract.CampaignTarget{}, "RingStatus": contract.RingStatus{},
		"CampaignProgress": contract.CampaignProgress{}, "CampaignBake": contract.CampaignBake{}, "CampaignRun": campaigns.Run{},
		"Plan": plan.Plan{}, "PlanLiveFleet": plan.LiveFleet{}, "PlanAssumption": plan.Assumption{}, "PlanStep": plan.Step{},
		"PlanPeak": plan.Peak{}, "PlanBudget": plan.Budget{}, "PlanApproval": plan.Approval{}, "PlanConflict": plan.Conflict{},
		"HeaderRouteStep": contract.HeaderRouteStep{}, "MatchRule": contract.MatchRule{}, "MirrorRouteStep": contract.MirrorRouteStep{},
		"Stickiness": contract.Stickiness{}, "RouteRules": contract.RouteRules{}, "MatchRoute": contract.MatchRoute{}, "Mirror": contract.Mirror{},
		"DriftRequest": DriftRequest{}, "DriftResult": drift.Result{}, "DriftRepair": drift.Repair{},
		"DriftTarget": contract.DriftTarget{}, "DriftItem": contract.DriftItem{},
		"LifecycleRequest": LifecycleRequest{}, "LifecycleRule": contract.LifecycleRule{}, "LifecycleList": LifecycleList{},
		"PolicyRequest": PolicyRequest{}, "Policy": contract.Policy{}, "PolicyList": PolicyList{},
		"Deprecation": contract.Deprecation{}, "Tombstone": contract.Tombstone{},
	} {
		schema, ok := doc.Comps.Schemas[name]
		if !assert.True(t, ok, "schema %s is documented", name) {
			continue
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		assert.ElementsMatch(t, jsonFields(reflect.TypeOf(v)), props, "schema %s has the fields of %T", name, v)
	}
}

// jsonFields lists the JSON names of a struct's fields, embedded ones inlined.
func jsonFields(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" || !f.IsExported():
		case f.Anonymous && name == "":
			out = append(out, jsonFields(f.Type)...)
		case name == "":
			out = append(out, f.Name)
		default:
			out = append(out, name)
		}
	}
	return out
}

func TestOpenAPIIsServedWithoutAToken(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.do("GET", "/v1/openapi.json", nil, "")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "application/json", r.header.Get("Content-Type"))
	assert.Equal(t, openAPI, r.body)
}

// Every component is used: each schema, response and parameter is reached by a
// $ref from the paths (directly or through other components), each security
// scheme is named by a security requirement. Every tag an operation uses is
// declared with a description, and the document says whom to contact and under
// what license, as linters such as redocly ask.
func TestOpenAPIUsesEveryComponentAndDescribesItsTags(t *testing.T) {
	var doc map[string]any
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	components, _ := doc["components"].(map[string]any)
	require.NotEmpty(t, components)

	used := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && !used[ref] {
				used[ref] = true
				section, name, _ := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
				target, _ := components[section].(map[string]any)
				require.Contains(t, target, name, "%s points at a component", ref)
				walk(target[name])
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for k, v := range doc {
		if k != "components" {
			walk(v)
		}
	}
	requirements := doc["security"].([]any)
	for _, ops := range doc["paths"].(map[string]any) {
		for _, op := range ops.(map[string]any) {
			if sec, ok := op.(map[string]any)["security"].([]any); ok {
				requirements = append(requirements, sec...)
			}
		}
	}
	for _, req := range requirements {
		for name := range req.(map[string]any) {
			used["#/components/securitySchemes/"+name] = true
		}
	}
	for section, items := range components {
		for name := range items.(map[string]any) {
			ref := "#/components/" + section + "/" + name
			assert.True(t, used[ref], "%s is used", ref)
		}
	}

	declared := map[string]bool{}
	for _, tag := range doc["tags"].([]any) {
		tag := tag.(map[string]any)
		declared[tag["name"].(string)] = true
		assert.NotEmpty(t, tag["description"], "tag %s has a description", tag["name"])
	}
	for path, ops := range doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			tags, _ := op.(map[string]any)["tags"].([]any)
			assert.NotEmpty(t, tags, "%s %s has a tag", method, path)
			for _, tag := range tags {
				assert.True(t, declared[tag.(string)], "%s %s: tag %s is declared", method, path, tag)
			}
		}
	}

	info := doc["info"].(map[string]any)
	contact, _ := info["contact"].(map[string]any)
	assert.NotEmpty(t, contact["url"], "info.contact.url")
	license, _ := info["license"].(map[string]any)
	assert.NotEmpty(t, license["name"], "info.license.name")
}
