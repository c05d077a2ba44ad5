using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using OpenAI.Chat;

namespace Bifrost.Middleware.Compatibility.Tests;

public sealed class ChatCompatibilityTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CompleteChatAsync_returns_the_text_usage_and_finish_reason()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");

        ChatCompletion completion = await chat.CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Hello from the SDK")],
            cancellationToken: Ct);

        Assert.Equal("Hello from the SDK", Assert.Single(completion.Content).Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal("echo", completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id, StringComparison.Ordinal);
        Assert.Equal(4, completion.Usage.OutputTokenCount);
        // 3 for the reply framing + (3 + 3 words) for the system message + (3 + 4 words) for the user message.
        Assert.Equal(16, completion.Usage.InputTokenCount);
        Assert.Equal(20, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task A_bare_model_uses_the_default_provider()
    {
        await using var host = await SdkHost.StartAsync();

        ChatCompletion completion = await host.Client.GetChatClient("echo").CompleteChatAsync([new UserChatMessage("bare")], cancellationToken: Ct);

        Assert.Equal("bare", completion.Content[0].Text);
    }

    [Fact]
    public async Task Multi_part_user_content_with_text_parts_is_understood()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var message = new UserChatMessage(ChatMessageContentPart.CreateTextPart("first part"), ChatMessageContentPart.CreateTextPart("second part"));

        ChatCompletion completion = await chat.CompleteChatAsync([message], cancellationToken: Ct);

        Assert.Equal("first part\nsecond part", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
    }

    [Fact]
    public async Task A_scripted_reply_is_set_through_the_SDKs_Metadata()
    {
        await using var host = await SdkHost.StartAsync();
        var options = new ChatCompletionOptions { Metadata = { ["local_reply"] = "scripted answer" } };

        ChatCompletion completion = await host.Client.GetChatClient("local/echo").CompleteChatAsync([new UserChatMessage("ignored")], options, Ct);

        Assert.Equal("scripted answer", completion.Content[0].Text);
    }

    [Fact]
    public async Task CompleteChatStreamingAsync_assembles_the_text_with_usage_and_finish_reason()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");

        var text = new StringBuilder();
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("streamed through the official SDK")], cancellationToken: Ct))
        {
            updates.Add(update);
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("streamed through the official SDK", text.ToString());
        Assert.Equal(ChatMessageRole.Assistant, updates[0].Role);
        Assert.Equal(ChatFinishReason.Stop, Assert.Single(updates, u => u.FinishReason is not null).FinishReason);
        var usage = updates[^1].Usage;
        Assert.NotNull(usage); // the SDK asks for include_usage; the last update carries it
        Assert.Equal(5, usage.OutputTokenCount);
        Assert.Equal(usage.InputTokenCount + 5, usage.TotalTokenCount);
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.Usage));
        Assert.All(updates, u => Assert.Equal(updates[0].CompletionId, u.CompletionId));
    }

    [Fact]
    public async Task A_gateway_rejection_throws_ClientResultException_with_status_400_and_our_message()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/not-a-model");

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.CompleteChatAsync([new UserChatMessage("x")], cancellationToken: Ct));

        Assert.Equal(400, ex.Status);
        Assert.Contains("Model 'not-a-model' is not available on provider 'local'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("invalid_request_error", ex.Message, StringComparison.Ordinal);
        Assert.Contains("model_not_found", ex.Message, StringComparison.Ordinal);
        Assert.Contains("model", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_streamed_gateway_rejection_throws_ClientResultException_with_status_400()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("nope/x");

        var ex = await Assert.ThrowsAsync<ClientResultException>(async () =>
        {
            await foreach (var _ in chat.CompleteChatStreamingAsync([new UserChatMessage("x")], cancellationToken: Ct))
            {
            }
        });

        Assert.Equal(400, ex.Status);
        Assert.Contains("provider_not_found", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_scripted_provider_error_reaches_the_SDK_with_its_status()
    {
        await using var host = await SdkHost.StartAsync();
        var options = new ChatCompletionOptions { Metadata = { ["local_status"] = "429", ["local_retry_after"] = "2" } };

        var ex = await Assert.ThrowsAsync<ClientResultException>(() => host.Client.GetChatClient("local/echo").CompleteChatAsync([new UserChatMessage("x")], options, Ct));

        Assert.Equal(429, ex.Status);
        Assert.Contains("Scripted failure with status 429", ex.Message, StringComparison.Ordinal);
        Assert.Contains("rate_limit_error", ex.Message, StringComparison.Ordinal);
        var raw = ex.GetRawResponse();
        Assert.NotNull(raw);
        Assert.True(raw.Headers.TryGetValue("Retry-After", out var retryAfter));
        Assert.Equal("2", retryAfter);
    }

    [Fact]
    public async Task A_protocol_call_with_a_per_call_header_gets_the_raw_Bifrost_answer()
    {
        await using var host = await SdkHost.StartAsync();
        var chat = host.Client.GetChatClient("local/echo");
        var body = BinaryContent.Create(BinaryData.FromString("""{"model":"local/echo","messages":[{"role":"user","content":"raw"}],"metadata":{"local_status":"503"}}"""));
        var options = new RequestOptions { ErrorOptions = ClientErrorBehaviors.NoThrow, CancellationToken = Ct };
        options.AddHeader("x-test-header", "1");

        ClientResult result = await chat.CompleteChatAsync(body, options);

        var response = result.GetRawResponse();
        Assert.Equal(503, response.Status);
        using var json = JsonDocument.Parse(response.Content);
        Assert.False(json.RootElement.GetProperty("is_bifrost_error").GetBoolean());
        Assert.Equal(503, json.RootElement.GetProperty("status_code").GetInt32());
        Assert.Equal("local", json.RootElement.GetProperty("extra_fields").GetProperty("provider").GetString());
    }
}
