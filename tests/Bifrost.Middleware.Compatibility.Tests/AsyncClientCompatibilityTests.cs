#pragma warning disable OPENAI001 // the SDK's Responses client is evaluation-only
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Text.Json;
using Bifrost.Middleware.Client;
using Microsoft.AspNetCore.TestHost;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Responses;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>
/// Bifrost.Middleware.Client against the real gateway endpoints (local provider) through the official SDK: submit with
/// <c>x-bf-async</c>, poll with <c>x-bf-async-id</c> to the typed result; failures, timeouts, cancellation, Retry-After.
/// </summary>
public sealed class AsyncClientCompatibilityTests
{
    private static readonly BifrostAsyncOptions Fast = new() { PollInterval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(30) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_chat_completion_job_is_submitted_then_polled_to_the_typed_ChatCompletion()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");

        var job = await chat.SubmitChatCompletionAsync([new UserChatMessage("later, please")], asyncOptions: Fast, cancellationToken: Ct);
        ChatCompletion completion = await job.WaitForResultAsync(Ct);

        Assert.False(string.IsNullOrEmpty(job.Id));
        Assert.Equal("later, please", Assert.Single(completion.Content).Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(2, completion.Usage.OutputTokenCount);
        // The result is the synchronous answer: the same text and usage as a direct call.
        ChatCompletion direct = await chat.CompleteChatAsync([new UserChatMessage("later, please")], cancellationToken: Ct);
        Assert.Equal(direct.Usage.InputTokenCount, completion.Usage.InputTokenCount);
        Assert.Equal(direct.Model, completion.Model);
    }

    [Fact]
    public async Task The_SDKs_options_and_every_message_reach_the_job()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var options = new ChatCompletionOptions { Metadata = { ["local_reply"] = "scripted through the job" }, MaxOutputTokenCount = 50 };

        ChatCompletion completion = await chat.CompleteChatInBackgroundAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("ignored")], options, Fast, Ct);

        Assert.Equal("scripted through the job", completion.Content[0].Text);
        // 3 for the reply framing + (3 + 3 words) for the system message + (3 + 1 word) for the user message.
        Assert.Equal(13, completion.Usage.InputTokenCount);
    }

    [Fact]
    public async Task A_job_is_polled_by_its_id_from_a_new_handle()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var submitted = await chat.SubmitChatCompletionAsync([new UserChatMessage("by id")], asyncOptions: Fast, cancellationToken: Ct);

        ChatCompletion completion = await chat.GetChatCompletionJob(submitted.Id, Fast).WaitForResultAsync(Ct);

        Assert.Equal("by id", completion.Content[0].Text);
    }

    [Fact]
    public async Task PollAsync_answers_null_while_the_job_runs_and_the_result_once_it_finished()
    {
        await using var host = await SdkHost.StartAsync();
        var (_, job) = await SubmitSlowAsync(host, "slow", delayMs: 400, Fast);

        Assert.Null(await job.PollAsync(Ct));
        ChatCompletion completion = await job.WaitForResultAsync(Ct);

        Assert.Equal("slow", completion.Content[0].Text);
        Assert.Same(completion, await job.PollAsync(Ct)); // finished: no further request
    }

    [Fact]
    public async Task A_failed_job_throws_the_SDKs_ClientResultException_with_the_gateways_status_and_error_body()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var options = new ChatCompletionOptions { Metadata = { ["local_status"] = "422" } };

        var job = await chat.SubmitChatCompletionAsync([new UserChatMessage("fail")], options, Fast, Ct);
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => job.WaitForResultAsync(Ct));

        Assert.Equal(422, ex.Status);
        using var body = JsonDocument.Parse(ex.GetRawResponse()!.Content);
        Assert.Equal(422, body.RootElement.GetProperty("status_code").GetInt32());
        Assert.False(body.RootElement.GetProperty("is_bifrost_error").GetBoolean()); // the provider failed, not the gateway
        Assert.Equal("local", body.RootElement.GetProperty("extra_fields").GetProperty("provider").GetString());
        Assert.False(string.IsNullOrEmpty(body.RootElement.GetProperty("error").GetProperty("message").GetString()));
    }

    [Fact]
    public async Task A_rejected_submission_throws_ClientResultException_400_and_stores_no_job()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/not-a-model");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.SubmitChatCompletionAsync([new UserChatMessage("x")], cancellationToken: Ct));

        Assert.Equal(400, ex.Status);
        Assert.Contains("model_not_found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_job_id_throws_ClientResultException_404()
    {
        await using var host = await SdkHost.StartAsync();

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => host.Client.GetChatClient("local/echo").GetChatCompletionJob("no-such-job", Fast).PollAsync(Ct));

        Assert.Equal(404, ex.Status);
    }

    [Fact]
    public async Task A_job_that_outlasts_the_timeout_throws_TimeoutException_and_can_still_be_polled()
    {
        await using var host = await SdkHost.StartAsync();
        var (chat, job) = await SubmitSlowAsync(host, "too slow", delayMs: 1500, new() { PollInterval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromMilliseconds(200) });

        var ex = await Assert.ThrowsAsync<TimeoutException>(() => job.WaitForResultAsync(Ct));

        Assert.Contains(job.Id, ex.Message, StringComparison.Ordinal);
        Assert.Equal("too slow", (await chat.GetChatCompletionJob(job.Id, Fast).WaitForResultAsync(Ct)).Content[0].Text); // the job went on
    }

    [Fact]
    public async Task Cancelling_the_wait_throws_OperationCanceledException_not_a_timeout()
    {
        await using var host = await SdkHost.StartAsync();
        var (_, job) = await SubmitSlowAsync(host, "cancelled", delayMs: 1500, Fast);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(150));

        var stopwatch = Stopwatch.StartNew();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => job.WaitForResultAsync(cancel.Token));

        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(1.5), $"stopped after {stopwatch.Elapsed}, not at the cancellation");
    }

    [Fact]
    public async Task Bad_polling_options_are_refused_before_anything_is_sent()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => chat.SubmitChatCompletionAsync([new UserChatMessage("x")], asyncOptions: new() { PollInterval = TimeSpan.Zero }, cancellationToken: Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => chat.SubmitChatCompletionAsync([new UserChatMessage("x")], asyncOptions: new() { Timeout = TimeSpan.FromSeconds(-2) }, cancellationToken: Ct));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => chat.SubmitChatCompletionAsync([new UserChatMessage("x")], asyncOptions: new() { ResultTtl = TimeSpan.FromMilliseconds(10) }, cancellationToken: Ct));
        Assert.Throws<ArgumentException>(() => chat.GetChatCompletionJob(" "));
    }

    [Fact]
    public async Task The_gateways_Retry_After_replaces_the_poll_interval()
    {
        await using var host = await SdkHost.StartAsync();
        var handler = new RetryAfterHandler(host.App.GetTestServer().CreateHandler(), "0.02");
        var chat = NewClient(host, handler).GetChatClient("local/echo");
        var options = new ChatCompletionOptions { Metadata = { ["local_delay_ms"] = "300" } };
        // An hour between polls: only the gateway's Retry-After (20 ms, on the submit and every pending poll) lets this finish.
        var asyncOptions = new BifrostAsyncOptions { PollInterval = TimeSpan.FromHours(1), Timeout = TimeSpan.FromSeconds(30) };

        ChatCompletion completion = await chat.CompleteChatInBackgroundAsync([new UserChatMessage("paced")], options, asyncOptions, Ct);

        Assert.Equal("paced", completion.Content[0].Text);
        Assert.True(handler.Polls >= 2, $"{handler.Polls} polls");
    }

    [Fact]
    public async Task The_result_ttl_is_sent_as_the_x_bf_async_job_result_ttl_header()
    {
        await using var host = await SdkHost.StartAsync();
        var handler = new RetryAfterHandler(host.App.GetTestServer().CreateHandler(), retryAfter: null);
        var chat = NewClient(host, handler).GetChatClient("local/echo");

        await chat.CompleteChatInBackgroundAsync([new UserChatMessage("kept")], asyncOptions: new() { PollInterval = TimeSpan.FromMilliseconds(20), ResultTtl = TimeSpan.FromSeconds(90.5) }, cancellationToken: Ct);

        Assert.Equal("91", handler.ResultTtl);
    }

    [Fact]
    public async Task An_embeddings_job_is_polled_to_the_typed_OpenAIEmbeddingCollection_equal_to_the_direct_call()
    {
        await using var host = await SdkHost.StartAsync();
        var embeddings = host.Client.GetEmbeddingClient("local/echo");
        var options = new EmbeddingGenerationOptions { Dimensions = 8 };

        OpenAIEmbeddingCollection result = await embeddings.GenerateEmbeddingsInBackgroundAsync(["first", "second"], options, Fast, Ct);
        OpenAIEmbeddingCollection direct = await embeddings.GenerateEmbeddingsAsync(["first", "second"], options, Ct);

        Assert.Equal(2, result.Count);
        Assert.Equal(8, result[0].ToFloats().Length);
        Assert.Equal(direct[0].ToFloats().ToArray(), result[0].ToFloats().ToArray());
        Assert.Equal(direct[1].ToFloats().ToArray(), result[1].ToFloats().ToArray());
        Assert.Equal(direct.Usage.InputTokenCount, result.Usage.InputTokenCount);
    }

    [Fact]
    public async Task A_responses_job_is_polled_to_the_typed_ResponseResult()
    {
        await using var host = await SdkHost.StartAsync();
        var responses = host.Client.GetResponsesClient();

        var job = await responses.SubmitResponseAsync(new CreateResponseOptions("local/echo", [ResponseItem.CreateUserMessageItem("respond later")]), Fast, Ct);
        ResponseResult result = await job.WaitForResultAsync(Ct);

        Assert.Equal("respond later", result.GetOutputText());
        Assert.Equal(ResponseStatus.Completed, result.Status);
    }

    [Fact]
    public async Task The_protocol_methods_submit_and_poll_as_README_shows()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var submit = new RequestOptions { CancellationToken = Ct };
        submit.AddHeader("x-bf-async", "true");
        ClientResult accepted = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString(
            """{"model":"local/echo","messages":[{"role":"user","content":"later, please"}]}""")), submit);
        string jobId = JsonDocument.Parse(accepted.GetRawResponse().Content).RootElement.GetProperty("id").GetString()!;

        var poll = new RequestOptions { CancellationToken = Ct };
        poll.AddHeader("x-bf-async-id", jobId);
        ClientResult answer;
        do
        {
            await Task.Delay(20, Ct);
            answer = await chat.CompleteChatAsync(BinaryContent.Create(BinaryData.FromString("{}")), poll);
        }
        while (JsonDocument.Parse(answer.GetRawResponse().Content).RootElement.GetProperty("choices").GetArrayLength() == 0);

        ChatCompletion completion = ModelReaderWriter.Read<ChatCompletion>(answer.GetRawResponse().Content)!;
        Assert.Equal("later, please", completion.Content[0].Text);
    }

    // --- Which of the SDK's typed methods work with async, honestly: they cannot send a header per call, so the only
    //     way is a client-wide policy adding x-bf-async, and then they read the pending answer as if it were final.

    [Fact]
    public async Task Typed_CompleteChatAsync_with_a_client_wide_x_bf_async_header_returns_an_empty_completion_whose_Id_is_the_job()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = NewClient(host, host.App.GetTestServer().CreateHandler(), new AsyncHeaderPolicy()).GetChatClient("local/echo");

        ChatCompletion pending = await chat.CompleteChatAsync([new UserChatMessage("typed")], cancellationToken: Ct);

        // The pending shape's choices: [] — reading Content (or Role, FinishReason, ...: they read choices[0]) throws.
        Assert.Throws<ArgumentOutOfRangeException>(() => pending.Content);
        Assert.Throws<ArgumentOutOfRangeException>(() => pending.FinishReason);
        // Its Id is the job id: this package polls it to the real answer (with a client without the policy).
        ChatCompletion completion = await host.Client.GetChatClient("local/echo").GetChatCompletionJob(pending.Id, Fast).WaitForResultAsync(Ct);
        Assert.Equal("typed", completion.Content[0].Text);
    }

    [Fact]
    public async Task Typed_GenerateEmbeddingsAsync_with_a_client_wide_x_bf_async_header_returns_an_empty_collection()
    {
        await using var host = await SdkHost.StartAsync();
        var embeddings = NewClient(host, host.App.GetTestServer().CreateHandler(), new AsyncHeaderPolicy()).GetEmbeddingClient("local/echo");

        OpenAIEmbeddingCollection pending = await embeddings.GenerateEmbeddingsAsync(["typed"], cancellationToken: Ct);

        Assert.Empty(pending);
    }

    [Fact]
    public async Task Typed_streaming_cannot_run_async_the_gateway_answers_400()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = NewClient(host, host.App.GetTestServer().CreateHandler(), new AsyncHeaderPolicy()).GetChatClient("local/echo");

        var ex = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in chat.CompleteChatStreamingAsync([new UserChatMessage("x")], cancellationToken: Ct))
            {
            }
        });

        Assert.Equal(400, ex.Status);
    }

    /// <summary>Submits a chat job that the local provider answers after <paramref name="delayMs"/>.</summary>
    private static async Task<(ChatClient Chat, BifrostAsyncJob<ChatCompletion> Job)> SubmitSlowAsync(SdkHost host, string text, int delayMs, BifrostAsyncOptions asyncOptions)
    {
        var chat = host.Client.GetChatClient("local/echo");
        var options = new ChatCompletionOptions { Metadata = { ["local_delay_ms"] = delayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) } };
        return (chat, await chat.SubmitChatCompletionAsync([new UserChatMessage(text)], options, asyncOptions, Ct));
    }

    private static OpenAIClient NewClient(SdkHost host, HttpMessageHandler handler, PipelinePolicy? policy = null)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(host.App.GetTestServer().BaseAddress, "/openai/v1"),
            Transport = new HttpClientPipelineTransport(new HttpClient(handler)),
            RetryPolicy = new ClientRetryPolicy(0),
        };
        if (policy is not null)
        {
            options.AddPolicy(policy, PipelinePosition.PerCall);
        }

        return new OpenAIClient(new ApiKeyCredential("sk-test"), options);
    }

    /// <summary>What a user would add to make the typed methods send <c>x-bf-async</c>: it applies to every call.</summary>
    private sealed class AsyncHeaderPolicy : PipelinePolicy
    {
        public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-bf-async", "true");
            ProcessNext(message, pipeline, currentIndex);
        }

        public override ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
        {
            message.Request.Headers.Set("x-bf-async", "true");
            return ProcessNextAsync(message, pipeline, currentIndex);
        }
    }

    /// <summary>Adds <c>Retry-After</c> to the gateway's async answers (as a gateway pacing its pollers would), counts polls and records the TTL header.</summary>
    private sealed class RetryAfterHandler(HttpMessageHandler inner, string? retryAfter) : DelegatingHandler(inner)
    {
        private int _polls;

        public int Polls => _polls;

        public string? ResultTtl { get; private set; }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Headers.Contains("x-bf-async-id"))
            {
                Interlocked.Increment(ref _polls);
            }

            if (request.Headers.TryGetValues("x-bf-async-job-result-ttl", out var ttl))
            {
                ResultTtl = string.Join(",", ttl);
            }

            var response = await base.SendAsync(request, cancellationToken);
            if (retryAfter is not null && response.IsSuccessStatusCode)
            {
                response.Headers.TryAddWithoutValidation("Retry-After", retryAfter);
            }

            return response;
        }
    }
}
