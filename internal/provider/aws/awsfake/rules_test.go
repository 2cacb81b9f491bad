package awsfake_test

import (
	"context"
	"regexp"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ruleARN = regexp.MustCompile(`^arn:aws:elasticloadbalancing:eu-west-1:[0-9]{12}:listener-rule/app/[A-Za-z0-9-]+/[0-9a-f]{16}/[0-9a-f]{16}/[0-9a-f]{16}$`)

// Listener rules and a forward's stickiness as the aws driver sets header
// routes: CreateRule, DescribeRules (paged, the default rule last),
// DescribeTags of a rule, DeleteRule decode whole into the SDK's types and
// read back what the requests set; their errors are the documented ones.
func TestTheFakesListenerRulesAreWhatTheSDKReads(t *testing.T) {
	ctx := context.Background()
	c := newClients(t, 1) // no retries: each error as AWS answers it
	listener := c.fake.AddListener()
	tg, err := c.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: awssdk.String("imago-canary"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: awssdk.Int32(80), VpcId: awssdk.String("vpc-0abc12345678def01")})
	require.NoError(t, err)
	arn := *tg.TargetGroups[0].TargetGroupArn

	// The forward's stickiness reads back.
	sticky := &elbtypes.TargetGroupStickinessConfig{Enabled: awssdk.Bool(true), DurationSeconds: awssdk.Int32(3600)}
	_, err = c.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: &listener, DefaultActions: []elbtypes.Action{{
		Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: &arn, Weight: awssdk.Int32(100)}}, TargetGroupStickinessConfig: sticky}}}})
	require.NoError(t, err)
	ls, err := c.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{listener}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeListeners", ls)
	assert.Equal(t, sticky, ls.Listeners[0].DefaultActions[0].ForwardConfig.TargetGroupStickinessConfig)

	header := elbtypes.RuleCondition{Field: awssdk.String("http-header"),
		HttpHeaderConfig: &elbtypes.HttpHeaderConditionConfig{HttpHeaderName: awssdk.String("X-Canary"), Values: []string{"1"}}}
	forward := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
		TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: &arn, Weight: awssdk.Int32(1)}}}}}
	made, err := c.elb.CreateRule(ctx, &elbv2.CreateRuleInput{ListenerArn: &listener, Priority: awssdk.Int32(40000),
		Conditions: []elbtypes.RuleCondition{header}, Actions: forward,
		Tags: []elbtypes.Tag{{Key: awssdk.String("imago:route"), Value: awssdk.String("canary")}}})
	require.NoError(t, err)
	c.decodedWhole(t, "CreateRule", made)
	require.Len(t, made.Rules, 1)
	rule := made.Rules[0]
	assert.Regexp(t, ruleARN, *rule.RuleArn)
	assert.Equal(t, "40000", *rule.Priority)
	assert.False(t, *rule.IsDefault)
	assert.Equal(t, []elbtypes.RuleCondition{header}, rule.Conditions, "the condition reads back")
	require.Len(t, rule.Actions, 1)
	in(t, "action type", rule.Actions[0].Type, elbtypes.ActionTypeEnum("").Values())
	assert.Equal(t, arn, *rule.Actions[0].ForwardConfig.TargetGroups[0].TargetGroupArn)

	all, err := c.elb.DescribeRules(ctx, &elbv2.DescribeRulesInput{ListenerArn: &listener})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeRules", all)
	require.Len(t, all.Rules, 2)
	assert.Equal(t, *rule.RuleArn, *all.Rules[0].RuleArn)
	assert.Equal(t, "default", *all.Rules[1].Priority, "the default rule comes last")
	assert.True(t, *all.Rules[1].IsDefault)
	var paged []string
	for p := elbv2.NewDescribeRulesPaginator(c.elb, &elbv2.DescribeRulesInput{ListenerArn: &listener, PageSize: awssdk.Int32(1)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, r := range out.Rules {
			paged = append(paged, *r.RuleArn)
		}
	}
	assert.Equal(t, []string{*all.Rules[0].RuleArn, *all.Rules[1].RuleArn}, paged, "the paginator walks every rule once")

	tags, err := c.elb.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: []string{*rule.RuleArn}})
	require.NoError(t, err)
	c.decodedWhole(t, "DescribeTags", tags)
	assert.Equal(t, []elbtypes.Tag{{Key: awssdk.String("imago:route"), Value: awssdk.String("canary")}}, tags.TagDescriptions[0].Tags)

	// Errors.
	_, err = c.elb.CreateRule(ctx, &elbv2.CreateRuleInput{ListenerArn: &listener, Priority: awssdk.Int32(40000),
		Conditions: []elbtypes.RuleCondition{header}, Actions: forward})
	var inUse *elbtypes.PriorityInUseException
	assert.ErrorAs(t, err, &inUse)
	four := header
	four.HttpHeaderConfig = &elbtypes.HttpHeaderConditionConfig{HttpHeaderName: awssdk.String("X-Canary"), Values: []string{"1", "2", "3", "4"}}
	_, err = c.elb.CreateRule(ctx, &elbv2.CreateRuleInput{ListenerArn: &listener, Priority: awssdk.Int32(40001),
		Conditions: []elbtypes.RuleCondition{four}, Actions: forward})
	assertCode(t, err, "ValidationError")
	_, err = c.elb.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: all.Rules[1].RuleArn})
	var notPermitted *elbtypes.OperationNotPermittedException
	assert.ErrorAs(t, err, &notPermitted, "the default rule cannot be deleted")
	del, err := c.elb.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: rule.RuleArn})
	require.NoError(t, err)
	c.decodedWhole(t, "DeleteRule", del)
	_, err = c.elb.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: rule.RuleArn})
	var notFound *elbtypes.RuleNotFoundException
	assert.ErrorAs(t, err, &notFound)
	_, err = c.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: &listener, DefaultActions: []elbtypes.Action{{
		Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
			TargetGroups:                []elbtypes.TargetGroupTuple{{TargetGroupArn: &arn, Weight: awssdk.Int32(100)}},
			TargetGroupStickinessConfig: &elbtypes.TargetGroupStickinessConfig{Enabled: awssdk.Bool(true), DurationSeconds: awssdk.Int32(604801)}}}}})
	assertCode(t, err, "ValidationError")
}
