using Bifrost.Middleware.Tests.Infrastructure;

namespace Bifrost.Middleware.Tests.Gateway;

/// <summary><see cref="IBifrostClient"/> from DI, without any HTTP server.</summary>
public sealed class InProcessClientTests
{
    private static ServiceProvider Build(Action<BifrostOptions>? configure = null, Action<IBifrostBuilder>? bifrost = null)
    {
        var services = new ServiceCollection();
        var builder = services.AddBifrost(options =>
        {
            options.DefaultProvider = "local";
            options.Providers["local"] = new ProviderOptions { Type = "local", Models = ["echo"], MaxRetries = 0 };
            configure?.Invoke(options);
        });
        bifrost?.Invoke(builder);
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    private static ChatCompletionRequest Request(string model, string text, Dictionary<string, string>? metadata = null) => new()
    {
        Model = model,
        Messages = [ChatCompletionMessage.FromText("system", "sys"), ChatCompletionMessage.FromText("user", text)],
        Metadata = metadata,
    };

    [Fact]
    public async Task ChatCompletionAsync_answers_in_process_with_extra_fields()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        var response = await client.ChatCompletionAsync(Request("local/echo", "in process"), TestContext.Current.CancellationToken);

        var choice = Assert.Single(response.Choices);
        Assert.Equal("in process", choice.Message!.Content);
        Assert.Equal("stop", choice.FinishReason);
        Assert.Equal("chat.completion", response.Object);
        Assert.Equal("local", response.ExtraFields!.Provider);
        Assert.Equal("echo", response.ExtraFields.ModelRequested);
        Assert.Equal("chat_completion", response.ExtraFields.RequestType);
        Assert.Equal(2, response.Usage!.CompletionTokens);
    }

    [Fact]
    public async Task The_callers_request_is_not_changed_by_the_gateway()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        var request = Request("local/echo", "same");
        request.Fallbacks = ["local/echo"];

        await client.ChatCompletionAsync(request, TestContext.Current.CancellationToken);

        Assert.Equal("local/echo", request.Model);
        Assert.Equal(["local/echo"], request.Fallbacks);
    }

    [Fact]
    public async Task ChatCompletionStreamAsync_streams_chunks_with_indexes()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        var request = Request("echo", "streamed in process");
        request.StreamOptions = new ChatStreamOptions { IncludeUsage = true };

        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in client.ChatCompletionStreamAsync(request, TestContext.Current.CancellationToken))
        {
            chunks.Add(chunk);
        }

        Assert.Equal(Enumerable.Range(0, chunks.Count), chunks.Select(c => c.ExtraFields!.ChunkIndex!.Value));
        Assert.All(chunks, c => Assert.Equal("local", c.ExtraFields!.Provider));
        Assert.Equal("assistant", chunks[0].Choices[0].Delta.Role);
        Assert.Equal("streamed in process", string.Concat(chunks.SelectMany(c => c.Choices).Select(c => c.Delta.Content)));
        Assert.Equal("stop", chunks[^2].Choices[0].FinishReason);
        Assert.Empty(chunks[^1].Choices);
        Assert.Equal(3, chunks[^1].Usage!.CompletionTokens);
    }

    [Fact]
    public async Task ListModelsAsync_lists_provider_slash_model_ids()
    {
        await using var services = Build(bifrost: b => b.AddProvider("acme", _ => new ScriptedAdapter()).ConfigureProvider("acme", p => p.Models = ["m1"]));
        var client = services.GetRequiredService<IBifrostClient>();

        var list = await client.ListModelsAsync(TestContext.Current.CancellationToken);

        Assert.Equal("list", list.Object);
        Assert.Equal(["acme/m1", "local/echo"], list.Data.Select(m => m.Id).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_gateway_rejection_throws_BifrostException_with_its_status()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();

        var ex = await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(Request("local/unknown", "x"), TestContext.Current.CancellationToken));

        Assert.Equal(400, ex.StatusCode);
        Assert.True(ex.Error.IsBifrostError);
        Assert.Equal("model_not_found", ex.Error.Error.Code);
        Assert.Equal("model", ex.Error.Error.Param);
        Assert.Contains("unknown", ex.Message, StringComparison.Ordinal);
        Assert.False(ex.IsRetryable);
    }

    [Fact]
    public async Task A_provider_error_throws_BifrostException_with_the_providers_status()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        var request = Request("local/echo", "x", new() { ["local_status"] = "429", ["local_retry_after"] = "3" });

        var ex = await Assert.ThrowsAsync<BifrostException>(() => client.ChatCompletionAsync(request, TestContext.Current.CancellationToken));

        Assert.Equal(429, ex.StatusCode);
        Assert.False(ex.Error.IsBifrostError);
        Assert.True(ex.IsRetryable);
        Assert.Equal(TimeSpan.FromSeconds(3), ex.RetryAfter);
        Assert.Equal("local", ex.Error.ExtraFields!.Provider);
    }

    [Fact]
    public async Task A_stream_error_before_the_first_chunk_throws_on_enumeration()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        var request = Request("local/echo", "x", new() { ["local_status"] = "401" });

        var ex = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var _ in client.ChatCompletionStreamAsync(request, TestContext.Current.CancellationToken))
            {
            }
        });

        Assert.Equal(401, ex.StatusCode);
        Assert.Equal("authentication_error", ex.Error.Error.Type);
        Assert.Equal("chat_completion_stream", ex.Error.ExtraFields!.RequestType);
    }

    [Fact]
    public async Task A_stream_error_after_chunks_throws_after_them()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        var request = Request("local/echo", "a b c d", new() { ["local_fail_after_chunks"] = "1" });

        var received = new List<ChatCompletionChunk>();
        var ex = await Assert.ThrowsAsync<BifrostException>(async () =>
        {
            await foreach (var chunk in client.ChatCompletionStreamAsync(request, TestContext.Current.CancellationToken))
            {
                received.Add(chunk);
            }
        });

        Assert.Equal(500, ex.StatusCode);
        Assert.Equal(2, received.Count);
    }

    [Fact]
    public async Task A_cancelled_token_cancels_the_call()
    {
        await using var services = Build();
        var client = services.GetRequiredService<IBifrostClient>();
        using var cts = new CancellationTokenSource();
        var call = client.ChatCompletionAsync(Request("local/echo", "x", new() { ["local_delay_ms"] = "600000" }), cts.Token);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
    }

    [Fact]
    public void The_client_is_a_singleton()
    {
        using var services = Build();
        Assert.Same(services.GetRequiredService<IBifrostClient>(), services.GetRequiredService<IBifrostClient>());
    }
}
