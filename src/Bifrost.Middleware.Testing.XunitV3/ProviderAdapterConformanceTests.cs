using System.Diagnostics;
using System.Text;
using Xunit;

namespace Bifrost.Middleware.Testing;

/// <summary>
/// The contract of <see cref="IProviderAdapter"/>, as tests. Derive from it in your test project with your adapter
/// (<c>public sealed class AcmeAdapterTests : ProviderAdapterConformanceTests&lt;AcmeAdapter&gt;</c>), create the adapter
/// and its <see cref="ProviderContext"/>, and — for the failure, delay and cancellation tests — apply a
/// <see cref="ProviderScript"/> to the adapter's upstream in <see cref="ScriptAsync"/>. Every test then runs against it:
/// <list type="bullet">
/// <item>chat returns a well-formed completion (id, an assistant message, a finish reason, usage with total = prompt + completion);</item>
/// <item>a stream starts with the assistant role, keeps <c>finish_reason</c> null until the one chunk that carries it,
/// sends the usage chunk last when <c>include_usage</c> is set (and none otherwise), and nothing after;</item>
/// <item>a cancelled token stops a call and a stream promptly with <see cref="OperationCanceledException"/>;</item>
/// <item>provider failures surface as <see cref="BifrostException"/> with the status, a message, the Retry-After, and
/// <see cref="BifrostException.IsRetryable"/> set for 429 and 5xx only;</item>
/// <item>operations the adapter does not offer answer a 400 with code <c>unsupported_operation</c> (or work);</item>
/// <item>models list and input-token counts are well-formed.</item>
/// </list>
/// Tests that need a script are skipped, with the reason shown, when <see cref="ScriptAsync"/> is not overridden.
/// </summary>
/// <typeparam name="TAdapter">The adapter under test (use <see cref="IProviderAdapter"/> for a non-public adapter type).</typeparam>
public abstract class ProviderAdapterConformanceTests<TAdapter> : IAsyncLifetime
    where TAdapter : IProviderAdapter
{
    /// <summary>Creates the adapter under test (once per test; the upstream it talks to is already set up).</summary>
    protected abstract ValueTask<TAdapter> CreateAdapterAsync();

    /// <summary>The context of a call: provider name, options (base URL, ...), the bare model and the key.</summary>
    protected abstract ProviderContext CreateContext();

    /// <summary>
    /// Makes the provider behave as <paramref name="script"/> says for the next call with <paramref name="request"/>:
    /// tell a fake upstream, or put it in the request (e.g. metadata) for an in-process adapter.
    /// </summary>
    /// <param name="script">The behaviour.</param>
    /// <param name="request">The request about to be sent; may be modified.</param>
    /// <returns>True when applied; false (the default) when the adapter cannot be scripted — then tests that need it are skipped.</returns>
    protected virtual ValueTask<bool> ScriptAsync(ProviderScript script, ChatCompletionRequest request) => ValueTask.FromResult(false);

    /// <summary>How long a cancelled call may take to stop. Default 5 s.</summary>
    protected virtual TimeSpan CancellationDeadline => TimeSpan.FromSeconds(5);

    /// <summary>The request the tests send: one system and one user message, a small max_completion_tokens.</summary>
    /// <param name="context">The context (its model is the request's model).</param>
    protected virtual ChatCompletionRequest CreateRequest(ProviderContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return new ChatCompletionRequest
        {
            Model = context.Model,
            Messages = [ChatCompletionMessage.FromText("system", "You are a test."), ChatCompletionMessage.FromText("user", "Say something short.")],
            MaxCompletionTokens = 64,
        };
    }

    /// <summary>Sets up what the adapter needs (e.g. starts a fake upstream). Called before each test.</summary>
    public virtual ValueTask InitializeAsync() => ValueTask.CompletedTask;

    /// <summary>Tears down what <see cref="InitializeAsync"/> set up. Called after each test.</summary>
    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private static CancellationToken TestToken => TestContext.Current.CancellationToken;

    /// <summary>A chat completion has an id, one assistant choice with a finish reason, and consistent usage.</summary>
    [Fact]
    public async Task Chat_returns_a_well_formed_completion()
    {
        var (adapter, context, request, scripted) = await ArrangeAsync(new ProviderScript());

        var response = await adapter.ChatCompletionAsync(context, request, TestToken);

        Assert.NotNull(response);
        Assert.False(string.IsNullOrEmpty(response.Id), "The completion needs an id.");
        Assert.Equal("chat.completion", response.Object);
        var choice = Assert.Single(response.Choices);
        Assert.Equal(0, choice.Index);
        Assert.NotNull(choice.Message);
        Assert.Equal("assistant", choice.Message.Role);
        Assert.False(string.IsNullOrEmpty(choice.FinishReason), "The choice needs a finish_reason.");
        Assert.True(choice.Message.Content is not null || choice.Message.ToolCalls is { Count: > 0 }, "The message needs content or tool calls.");
        if (scripted)
        {
            Assert.Equal(new ProviderScript().Reply, choice.Message.Content);
            Assert.Equal("stop", choice.FinishReason);
        }

        AssertUsage(response.Usage);
    }

    /// <summary>A stream: the role first, finish_reason null until exactly one chunk carries it, the usage chunk last, nothing after.</summary>
    [Fact]
    public async Task Stream_starts_with_the_role_and_ends_with_one_finish_then_usage()
    {
        var (adapter, context, request, scripted) = await ArrangeAsync(new ProviderScript(), stream: true, includeUsage: true);

        var chunks = await CollectAsync(adapter.StreamChatCompletionAsync(context, request, TestToken));

        AssertStreamShape(chunks, includeUsage: true);
        var text = Text(chunks);
        Assert.False(string.IsNullOrEmpty(text), "The stream carried no content.");
        if (scripted)
        {
            Assert.Equal(new ProviderScript().Reply, text);
        }
    }

    /// <summary>Without <c>stream_options.include_usage</c>, no usage chunk (empty choices) is sent.</summary>
    [Fact]
    public async Task Stream_without_include_usage_ends_with_the_finish_chunk()
    {
        var (adapter, context, request, _) = await ArrangeAsync(new ProviderScript(), stream: true, includeUsage: false);

        var chunks = await CollectAsync(adapter.StreamChatCompletionAsync(context, request, TestToken));

        AssertStreamShape(chunks, includeUsage: false);
    }

    /// <summary>An already-cancelled token stops a chat call with <see cref="OperationCanceledException"/>.</summary>
    [Fact]
    public async Task Chat_with_a_cancelled_token_throws_OperationCanceledException()
    {
        var (adapter, context, request, _) = await ArrangeAsync(new ProviderScript());
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => adapter.ChatCompletionAsync(context, request, cts.Token));
    }

    /// <summary>An already-cancelled token stops a stream with <see cref="OperationCanceledException"/>.</summary>
    [Fact]
    public async Task Stream_with_a_cancelled_token_throws_OperationCanceledException()
    {
        var (adapter, context, request, _) = await ArrangeAsync(new ProviderScript(), stream: true, includeUsage: true);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => CollectAsync(adapter.StreamChatCompletionAsync(context, request, cts.Token)));
    }

    /// <summary>Cancelling while the provider has not answered yet stops the call promptly.</summary>
    [Fact]
    public async Task Cancelling_a_slow_call_stops_it_promptly()
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { ResponseDelay = TimeSpan.FromSeconds(30) });
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        cts.CancelAfter(TimeSpan.FromMilliseconds(200));
        var watch = Stopwatch.StartNew();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => adapter.ChatCompletionAsync(context, request, cts.Token));

        Assert.True(watch.Elapsed < CancellationDeadline, $"The call took {watch.Elapsed} to stop after cancellation.");
    }

    /// <summary>Cancelling a stream between chunks stops it promptly.</summary>
    [Fact]
    public async Task Cancelling_a_stream_between_chunks_stops_it_promptly()
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { ChunkDelay = TimeSpan.FromSeconds(30) }, stream: true, includeUsage: true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestToken);
        await using var enumerator = adapter.StreamChatCompletionAsync(context, request, cts.Token).GetAsyncEnumerator(cts.Token);
        Assert.True(await enumerator.MoveNextAsync(), "The stream sent no first chunk.");

        var watch = Stopwatch.StartNew();
        cts.CancelAfter(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (await enumerator.MoveNextAsync())
            {
                // drain what was already received; the next wait must be cancelled
            }
        });

        Assert.True(watch.Elapsed < CancellationDeadline, $"The stream took {watch.Elapsed} to stop after cancellation.");
    }

    /// <summary>A 429 is a retryable <see cref="BifrostException"/> with the provider's status, a message and its Retry-After.</summary>
    [Fact]
    public async Task Rate_limit_is_a_retryable_BifrostException_with_retry_after()
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { FailWithStatus = 429, RetryAfter = TimeSpan.FromSeconds(7) });

        var error = await Assert.ThrowsAsync<BifrostException>(() => adapter.ChatCompletionAsync(context, request, TestToken));

        AssertError(error, 429, retryable: true);
        Assert.Equal(TimeSpan.FromSeconds(7), error.RetryAfter);
    }

    /// <summary>5xx failures are retryable.</summary>
    /// <param name="status">The provider's status.</param>
    [Theory]
    [InlineData(500)]
    [InlineData(503)]
    public async Task Server_errors_are_retryable(int status)
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { FailWithStatus = status });

        var error = await Assert.ThrowsAsync<BifrostException>(() => adapter.ChatCompletionAsync(context, request, TestToken));

        AssertError(error, status, retryable: true);
    }

    /// <summary>Client errors (400, 401, 403, 404) pass through with their status and are not retryable.</summary>
    /// <param name="status">The provider's status.</param>
    [Theory]
    [InlineData(400)]
    [InlineData(401)]
    [InlineData(403)]
    [InlineData(404)]
    public async Task Client_errors_pass_through_and_are_not_retryable(int status)
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { FailWithStatus = status });

        var error = await Assert.ThrowsAsync<BifrostException>(() => adapter.ChatCompletionAsync(context, request, TestToken));

        AssertError(error, status, retryable: false);
    }

    /// <summary>A stream that fails before its first chunk throws the provider's error (so the gateway can retry or fall back).</summary>
    [Fact]
    public async Task Stream_failure_before_the_first_chunk_is_a_BifrostException()
    {
        var (adapter, context, request, _) = await ArrangeScriptedAsync(new ProviderScript { FailWithStatus = 429, RetryAfter = TimeSpan.FromSeconds(3) }, stream: true, includeUsage: true);

        var error = await Assert.ThrowsAsync<BifrostException>(() => CollectAsync(adapter.StreamChatCompletionAsync(context, request, TestToken)));

        AssertError(error, 429, retryable: true);
    }

    /// <summary>Embeddings and legacy completions either work or answer a 400 <c>unsupported_operation</c>.</summary>
    [Fact]
    public async Task Operations_not_offered_answer_400_unsupported_operation()
    {
        var (adapter, context, _, _) = await ArrangeAsync(new ProviderScript());
        IProviderAdapter contract = adapter;

        await AssertSupportedOrUnsupported(async () => Assert.NotNull(await contract.EmbeddingsAsync(context, new EmbeddingRequest { Model = context.Model, Input = new TextInput(["conformance"], single: true) }, TestToken)));
        await AssertSupportedOrUnsupported(async () => Assert.NotNull(await contract.TextCompletionAsync(context, new TextCompletionRequest { Model = context.Model, Prompt = new TextInput(["Say"], single: true), MaxTokens = 16 }, TestToken)));
        await AssertSupportedOrUnsupported(async () =>
        {
            var any = false;
            await foreach (var chunk in contract.StreamTextCompletionAsync(context, new TextCompletionRequest { Model = context.Model, Prompt = new TextInput(["Say"], single: true), MaxTokens = 16, Stream = true }, TestToken))
            {
                Assert.NotNull(chunk);
                any = true;
            }

            Assert.True(any, "A supported text completion stream sent nothing.");
        });
        if (contract.SupportsNativeResponses(context))
        {
            Assert.NotNull(await contract.ResponsesAsync(context, new ResponsesRequest { Model = context.Model, Input = new ResponsesInput("Say something short.") }, TestToken));
        }
    }

    /// <summary>A native input-token count is either absent (null: the gateway estimates) or positive.</summary>
    [Fact]
    public async Task Input_token_count_is_null_or_positive()
    {
        var (adapter, context, _, _) = await ArrangeAsync(new ProviderScript());
        IProviderAdapter contract = adapter;

        var count = await contract.CountInputTokensAsync(context, new ResponsesRequest { Model = context.Model, Input = new ResponsesInput("Count these tokens, please.") }, TestToken);

        Assert.True(count is null or > 0, $"A native count must be positive, got {count}.");
    }

    /// <summary>The models list has an id for every model.</summary>
    [Fact]
    public async Task Models_have_ids()
    {
        var (adapter, context, _, _) = await ArrangeAsync(new ProviderScript());
        IProviderAdapter contract = adapter;
        var providerWide = new ProviderContext(context.ProviderName, context.Options, string.Empty, context.ApiKey);

        var models = await contract.ListModelsAsync(providerWide, TestToken);

        Assert.NotNull(models);
        Assert.All(models, m => Assert.False(string.IsNullOrEmpty(m.Id), "A model needs an id."));
    }

    private async Task<(TAdapter Adapter, ProviderContext Context, ChatCompletionRequest Request, bool Scripted)> ArrangeAsync(ProviderScript script, bool stream = false, bool includeUsage = false)
    {
        var adapter = await CreateAdapterAsync();
        var context = CreateContext();
        var request = CreateRequest(context);
        if (stream)
        {
            request.Stream = true;
            request.StreamOptions = includeUsage ? new ChatStreamOptions { IncludeUsage = true } : null;
        }

        var scripted = await ScriptAsync(script, request);
        return (adapter, context, request, scripted);
    }

    private async Task<(TAdapter Adapter, ProviderContext Context, ChatCompletionRequest Request, bool Scripted)> ArrangeScriptedAsync(ProviderScript script, bool stream = false, bool includeUsage = false)
    {
        var arranged = await ArrangeAsync(script, stream, includeUsage);
        if (!arranged.Scripted)
        {
            Assert.Skip("The adapter's provider cannot be scripted: override ScriptAsync to run the failure, delay and cancellation tests.");
        }

        return arranged;
    }

    private static async Task<List<ChatCompletionChunk>> CollectAsync(IAsyncEnumerable<ChatCompletionChunk> stream)
    {
        var chunks = new List<ChatCompletionChunk>();
        await foreach (var chunk in stream)
        {
            chunks.Add(chunk);
        }

        return chunks;
    }

    private static string Text(List<ChatCompletionChunk> chunks)
    {
        var text = new StringBuilder();
        foreach (var chunk in chunks)
        {
            foreach (var choice in chunk.Choices)
            {
                text.Append(choice.Delta?.Content);
            }
        }

        return text.ToString();
    }

    private static void AssertStreamShape(List<ChatCompletionChunk> chunks, bool includeUsage)
    {
        Assert.NotEmpty(chunks);
        var id = chunks[0].Id;
        Assert.False(string.IsNullOrEmpty(id), "Chunks need an id.");
        Assert.All(chunks, c =>
        {
            Assert.Equal(id, c.Id);
            Assert.Equal("chat.completion.chunk", c.Object);
        });

        var first = chunks[0];
        Assert.True(first.Choices.Count > 0, "The first chunk must carry a choice.");
        Assert.Equal("assistant", first.Choices[0].Delta?.Role);

        var finishes = chunks.Select((c, i) => (Chunk: c, Index: i)).Where(x => x.Chunk.Choices.Any(ch => ch.FinishReason is not null)).ToList();
        var finish = Assert.Single(finishes);
        Assert.False(string.IsNullOrEmpty(Assert.Single(finish.Chunk.Choices).FinishReason));

        var before = chunks.Take(finish.Index).ToList();
        Assert.All(before, c => Assert.NotEmpty(c.Choices));
        var after = chunks.Skip(finish.Index + 1).ToList();
        if (includeUsage)
        {
            var usageChunk = Assert.Single(after);
            Assert.Empty(usageChunk.Choices);
            AssertUsage(usageChunk.Usage);
        }
        else
        {
            Assert.Empty(after);
        }
    }

    private static void AssertUsage(ChatUsage? usage)
    {
        Assert.NotNull(usage);
        Assert.True(usage.PromptTokens > 0, $"prompt_tokens must be positive, got {usage.PromptTokens}.");
        Assert.True(usage.CompletionTokens >= 0, $"completion_tokens must not be negative, got {usage.CompletionTokens}.");
        Assert.Equal(usage.PromptTokens + usage.CompletionTokens, usage.TotalTokens);
    }

    private static void AssertError(BifrostException error, int status, bool retryable)
    {
        Assert.Equal(status, error.StatusCode);
        Assert.Equal(retryable, error.IsRetryable);
        Assert.False(string.IsNullOrWhiteSpace(error.Message), "The error needs a message.");
        Assert.False(string.IsNullOrWhiteSpace(error.Error.Error.Type), "The error needs a type.");
    }

    private static async Task AssertSupportedOrUnsupported(Func<Task> call)
    {
        try
        {
            await call();
        }
        catch (BifrostException ex)
        {
            Assert.Equal(400, ex.StatusCode);
            Assert.Equal("unsupported_operation", ex.Error.Error.Code);
            Assert.False(ex.IsRetryable, "An unsupported operation must not be retried.");
        }
    }
}
