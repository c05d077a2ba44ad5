#pragma warning disable OPENAI001 // evaluation-only SDK options are exactly what a compatibility test must cover
using System.ClientModel;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using OpenAI.Chat;

namespace Bifrost.Middleware.Compatibility.Tests;

/// <summary>Whatever the SDK can put in a request is accepted (never a 400 for a field we do not model) and reaches the adapter.</summary>
public sealed class RequestOptionsCompatibilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_common_SDK_option_reaches_the_adapter()
    {
        await using var host = await SdkHost.StartAsync(b => b.AddProvider<RecordingAdapter>("acme"));
        var adapter = host.Services.GetRequiredService<RecordingAdapter>();
        var options = new ChatCompletionOptions
        {
            Temperature = 0.2f,
            TopP = 0.9f,
            MaxOutputTokenCount = 128,
            FrequencyPenalty = 0.1f,
            PresencePenalty = 0.3f,
            StopSequences = { "END", "STOP" },
            LogitBiases = { [50256] = -100 },
            IncludeLogProbabilities = true,
            TopLogProbabilityCount = 2,
            EndUserId = "user-42",
            StoredOutputEnabled = true,
            Metadata = { ["team"] = "blue" },
            ReasoningEffortLevel = ChatReasoningEffortLevel.Low,
            AllowParallelToolCalls = false,
            Tools = { global::OpenAI.Chat.ChatTool.CreateFunctionTool("f") },
        };
        options.Seed = 7;

        ChatCompletion completion = await host.Client.GetChatClient("acme/any").CompleteChatAsync([new DeveloperChatMessage("dev"), new UserChatMessage("hi")], options, Ct);

        Assert.Equal("ok", completion.Content[0].Text);
        var request = Assert.Single(adapter.Requests);
        Assert.Equal(0.2, request.Temperature!.Value, 3);
        Assert.Equal(0.9, request.TopP!.Value, 3);
        Assert.Equal(128, request.MaxCompletionTokens);
        Assert.Equal(0.1, request.FrequencyPenalty!.Value, 3);
        Assert.Equal(0.3, request.PresencePenalty!.Value, 3);
        Assert.Equal(["END", "STOP"], request.Stop);
        Assert.Equal(-100, request.LogitBias!["50256"]);
        Assert.True(request.Logprobs);
        Assert.Equal(2, request.TopLogprobs);
        Assert.Equal("user-42", request.User);
        Assert.True(request.Store);
        Assert.Equal("blue", request.Metadata!["team"]);
        Assert.Equal("low", request.ReasoningEffort);
        Assert.False(request.ParallelToolCalls);
        Assert.Equal(7, request.Seed);
        Assert.Equal(["developer", "user"], request.Messages!.Select(m => m.Role));
    }

    [Fact]
    public async Task Image_parts_reach_the_adapter_with_url_and_detail()
    {
        await using var host = await SdkHost.StartAsync(b => b.AddProvider<RecordingAdapter>("acme"));
        var adapter = host.Services.GetRequiredService<RecordingAdapter>();
        var message = new UserChatMessage(
            ChatMessageContentPart.CreateTextPart("What is this?"),
            ChatMessageContentPart.CreateImagePart(new Uri("https://example.com/cat.png"), ChatImageDetailLevel.High),
            ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes([1, 2, 3]), "image/png"));

        await host.Client.GetChatClient("acme/vision").CompleteChatAsync([message], cancellationToken: Ct);

        var parts = Assert.Single(adapter.Requests).Messages![0].Content!.Parts!;
        Assert.Equal(["text", "image_url", "image_url"], parts.Select(p => p.Type));
        Assert.Equal("https://example.com/cat.png", parts[1].ImageUrl!.Url);
        Assert.Equal("high", parts[1].ImageUrl!.Detail);
        Assert.Equal("data:image/png;base64,AQID", parts[2].ImageUrl!.Url);
    }

    [Fact]
    public async Task A_scripted_429_on_a_stream_reaches_the_SDK_as_ClientResultException()
    {
        await using var host = await SdkHost.StartAsync();
        var options = new ChatCompletionOptions { Metadata = { ["local_status"] = "429" } };

        var ex = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in host.Client.GetChatClient("local/echo").CompleteChatStreamingAsync([new UserChatMessage("x")], options, Ct))
            {
            }
        });

        Assert.Equal(429, ex.Status);
        Assert.Contains("local_scripted_failure", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failure_mid_stream_stops_the_SDKs_enumeration_after_the_good_updates()
    {
        await using var host = await SdkHost.StartAsync();
        var options = new ChatCompletionOptions { Metadata = { ["local_fail_after_chunks"] = "2" } };

        var text = new System.Text.StringBuilder();
        var finished = false;
        Exception? failure = null;
        try
        {
            await foreach (var update in host.Client.GetChatClient("local/echo").CompleteChatStreamingAsync([new UserChatMessage("one two three four")], options, Ct))
            {
                foreach (var part in update.ContentUpdate)
                {
                    text.Append(part.Text);
                }

                finished |= update.FinishReason is not null;
            }
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        // The SDK saw the good part and never a finish reason: the caller can tell the answer is incomplete.
        Assert.Equal("one two", text.ToString());
        Assert.False(finished);

        // OpenAI .NET 2.15 does not raise on a `data: {"error": ...}` event (it reads it as an empty update and the
        // stream then ends without [DONE]). Pinned so that a change in the SDK, or in our error event, is noticed.
        Assert.Null(failure);
    }

    public sealed class RecordingAdapter : IProviderAdapter
    {
        public ConcurrentQueue<ChatCompletionRequest> Requests { get; } = new();

        public Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            return Task.FromResult(new ChatCompletionResponse
            {
                Id = "chatcmpl-rec",
                Created = 1_700_000_000,
                Model = context.Model,
                Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = "ok" }, FinishReason = "stop" }],
                Usage = new ChatUsage { PromptTokens = 1, CompletionTokens = 1, TotalTokens = 2 },
            });
        }

        public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            Requests.Enqueue(request);
            await Task.Yield();
            yield return new ChatCompletionChunk { Id = "chatcmpl-rec", Model = context.Model, Choices = [new ChatChunkChoice { Delta = new ChatDelta { Role = "assistant", Content = "ok" }, FinishReason = "stop" }] };
        }
    }
}
