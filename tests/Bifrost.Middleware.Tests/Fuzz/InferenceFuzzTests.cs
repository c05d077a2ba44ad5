using Bifrost.Middleware.Tests.Inference;
using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Fuzz;

/// <summary>
/// Property-based fuzzing of every inference route and path (issue 11): bodies generated from valid base requests by
/// mutating one node (invalid UTF-16 escapes in values, property names and extension data; out-of-range and non-finite
/// numbers; nulls; wrong types; removed fields) must never get a 5xx, must get the Bifrost error shape when refused,
/// and must get the same answer synchronously, with <c>x-bf-async</c> and on the <c>v1/async</c> envelope.
/// A failure lists each broken property with a shrunk body and the seed/case to replay it (see README, Tests).
/// </summary>
public sealed class InferenceFuzzTests
{
    /// <summary>Cases per test in CI (BIFROST_FUZZ_ITERATIONS overrides).</summary>
    private const int CiIterations = 500;

    public static TheoryData<string, FuzzPath> Routes => new()
    {
        { "chat/completions", FuzzPath.SyncAndAsync },
        { "chat/completions", FuzzPath.Stream },
        { "completions", FuzzPath.SyncAndAsync },
        { "completions", FuzzPath.Stream },
        { "embeddings", FuzzPath.SyncAndAsync },
        { "responses", FuzzPath.SyncAndAsync },
        { "responses", FuzzPath.Stream },
        { "responses/input_tokens", FuzzPath.SyncOnly },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Generated_bodies_never_get_a_5xx_and_get_the_same_answer_on_every_path(string route, FuzzPath path)
    {
        await using var host = await StartAsync();
        var oracle = new FuzzOracle(host);
        var targets = FuzzTargets.Of(route, path);

        // The base requests themselves must succeed, or the mutations would test nothing.
        foreach (var target in targets)
        {
            var violations = await oracle.CheckAsync(target, target.BaseJson);
            using var response = await host.PostJsonAsync(target.Url, target.BaseJson, InferenceKit.Ct);
            Assert.True(response.IsSuccessStatusCode && violations.Count == 0,
                $"the base request of {target} must succeed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(InferenceKit.Ct)} {string.Join("; ", violations)}");
        }

        var cases = FuzzRunner.Cases(targets, FuzzSettings.Iterations(CiIterations));
        await FuzzRunner.RunAsync($"{route} ({path})", cases, oracle.CheckAsync);
    }

    /// <summary>The local provider, fast job polling, enough workers that jobs never wait behind each other.</summary>
    internal static Task<GatewayHost> StartAsync() => InferenceKit.StartLocalAsync(options =>
    {
        options.Jobs.Workers = 8;
        options.Jobs.PollInterval = TimeSpan.FromMilliseconds(10);

        // Scripted provider failures (local_status) are answered at once, not retried with backoff (sync or as jobs).
        options.Providers["local"].MaxRetries = 0;
        options.Jobs.RetryBaseDelay = TimeSpan.FromMilliseconds(10);
    });
}
