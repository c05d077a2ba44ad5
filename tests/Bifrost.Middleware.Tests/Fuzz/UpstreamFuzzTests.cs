using System.Text.Json.Nodes;
using Bifrost.Middleware.Tests.Anthropic;
using Bifrost.Middleware.Tests.Infrastructure;
using Bifrost.Middleware.Tests.Upstream;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>
/// The fuzz suite through the upstream adapters (finding 2: "including the upstream send of the OpenAI-compatible and
/// Anthropic adapters"): the same generated chat bodies, routed to a real local OpenAI-compatible server and a fake
/// Anthropic server, sync, streamed and async — never a 5xx from the gateway itself, the Bifrost shape, the same answer.
/// </summary>
public sealed class UpstreamFuzzTests
{
    private const int CiIterations = 150;

    private static readonly string[] AnthropicRefuses = ["n", "response_format", "logprobs", "top_logprobs", "logit_bias", "presence_penalty", "frequency_penalty", "seed"];

    public static TheoryData<string, FuzzPath> Providers => new()
    {
        { "openai/gpt-4o-mini", FuzzPath.SyncAndAsync },
        { "openai/gpt-4o-mini", FuzzPath.Stream },
        { "anthropic/claude-sonnet-4-5", FuzzPath.SyncAndAsync },
        { "anthropic/claude-sonnet-4-5", FuzzPath.Stream },
    };

    [Theory]
    [MemberData(nameof(Providers))]
    public async Task Generated_chat_bodies_sent_upstream_never_get_a_5xx_and_get_the_same_answer(string model, FuzzPath path)
    {
        await using var openai = await FakeOpenAIUpstream.StartAsync();
        await using var anthropic = await FakeAnthropicUpstream.StartAsync();
        await using var host = await GatewayHost.StartAsync(options =>
        {
            options.Jobs.Workers = 8;
            options.Jobs.PollInterval = TimeSpan.FromMilliseconds(10);
            options.Providers["openai"] = UpstreamGateway.Provider(openai, p => p.MaxRetries = 0);
            options.Providers["anthropic"] = new ProviderOptions
            {
                Type = "anthropic",
                BaseUrl = anthropic.BaseUrl,
                Keys = [new ProviderKeyOptions { Value = "sk-ant-test" }],
                MaxRetries = 0,
                RetryBaseDelay = TimeSpan.Zero,
            };
        });
        var oracle = new FuzzOracle(host);
        var template = FuzzTargets.Of("chat/completions", path)[0];
        var body = JsonNode.Parse(template.BaseJson)!.AsObject();
        body["model"] = model;
        if (model.StartsWith("anthropic/", StringComparison.Ordinal))
        {
            // What Anthropic cannot express is refused up front (a 400 naming it); leave it out so the mutations go deeper.
            foreach (var refused in AnthropicRefuses)
            {
                body.Remove(refused);
            }
        }

        var target = template with { BaseJson = body.ToJsonString() };
        var baseViolations = await oracle.CheckAsync(target, target.BaseJson);
        using (var response = await host.PostJsonAsync(target.Url, target.BaseJson, TestContext.Current.CancellationToken))
        {
            // The base must succeed (and stream), or the mutations would only meet an early 400.
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(response.IsSuccessStatusCode && baseViolations.Count == 0 && !text.Contains("\"error\"", StringComparison.Ordinal),
                $"the base request through {model} must succeed: {(int)response.StatusCode} {FuzzOracle.Excerpt(text)} " + IssueRegressionTests.Describe(target.Route, target.BaseJson, baseViolations));
        }

        await FuzzRunner.RunAsync($"chat/completions via {model} ({path})", FuzzRunner.Cases([target], FuzzSettings.Iterations(CiIterations)), oracle.CheckAsync);
    }
}
