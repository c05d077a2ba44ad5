using System.Text.Json;
using Bifrost.Middleware.Tests.ChatClientBridge;
using Bifrost.Middleware.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using AI = Microsoft.Extensions.AI;

namespace Bifrost.Middleware.Tests.AIAbstractions;

/// <summary>Messages and their contents, M.E.AI → wire, and back through the inbound IChatClient provider unchanged.</summary>
public sealed class ChatMessageMappingTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly byte[] Png = [0x89, 0x50, 0x4E, 0x47, 1, 2, 3];
    private static readonly byte[] Wav = [0x52, 0x49, 0x46, 0x46, 9, 9];
    private static readonly byte[] Pdf = [0x25, 0x50, 0x44, 0x46, 7];

    private static List<AI.ChatMessage> Conversation() =>
    [
        new(ChatRole.System, "You are terse."),
        new(ChatRole.User,
        [
            new TextContent("Describe these."),
            new DataContent(Png, "image/png") { AdditionalProperties = new() { ["detail"] = "low" } },
            new UriContent("https://example.com/cat.jpg", "image/jpeg"),
            new DataContent(Wav, "audio/wav"),
            new DataContent(Pdf, "application/pdf") { Name = "doc.pdf" },
            new HostedFileContent("file-123") { Name = "notes.pdf" },
        ]),
        new(ChatRole.Assistant, [new TextContent("Calling."), new FunctionCallContent("call_1", "Lookup", new Dictionary<string, object?> { ["q"] = "cats", ["n"] = 2 })]),
        new(ChatRole.Tool, [new FunctionResultContent("call_1", new { found = 3 })]),
        new(ChatRole.Assistant, [new ErrorContent("No.") { ErrorCode = "Refusal" }]),
        new(ChatRole.User, "Thanks"),
    ];

    [Fact]
    public async Task Every_role_and_content_kind_becomes_its_wire_form()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        await chat.GetResponseAsync(Conversation(), cancellationToken: Ct);

        var messages = Assert.Single(acme.Calls).Request.Messages!;
        Assert.Equal(["system", "user", "assistant", "tool", "assistant", "user"], messages.Select(m => m.Role));
        Assert.Equal("You are terse.", messages[0].Content!.Text);

        var parts = messages[1].Content!.Parts!;
        Assert.Equal(["text", "image_url", "image_url", "input_audio", "file", "file"], parts.Select(p => p.Type));
        Assert.Equal("data:image/png;base64," + Convert.ToBase64String(Png), parts[1].ImageUrl!.Url);
        Assert.Equal("low", parts[1].ImageUrl!.Detail);
        Assert.Equal("https://example.com/cat.jpg", parts[2].ImageUrl!.Url);
        var audio = parts[3].AdditionalProperties!["input_audio"];
        Assert.Equal(Convert.ToBase64String(Wav), audio.GetProperty("data").GetString());
        Assert.Equal("wav", audio.GetProperty("format").GetString());
        var file = parts[4].AdditionalProperties!["file"];
        Assert.Equal("data:application/pdf;base64," + Convert.ToBase64String(Pdf), file.GetProperty("file_data").GetString());
        Assert.Equal("doc.pdf", file.GetProperty("filename").GetString());
        Assert.Equal("file-123", parts[5].AdditionalProperties!["file"].GetProperty("file_id").GetString());

        Assert.Equal("Calling.", messages[2].Content!.Text);
        var call = Assert.Single(messages[2].ToolCalls!);
        Assert.Equal("call_1", call.Id);
        Assert.Equal("Lookup", call.Function!.Name);
        var arguments = JsonDocument.Parse(call.Function.Arguments!).RootElement;
        Assert.Equal("cats", arguments.GetProperty("q").GetString());
        Assert.Equal(2, arguments.GetProperty("n").GetInt32());

        Assert.Equal("call_1", messages[3].ToolCallId);
        Assert.Equal(3, JsonDocument.Parse(messages[3].Content!.Text!).RootElement.GetProperty("found").GetInt32());
        Assert.Equal("No.", messages[4].Refusal);
        Assert.Null(messages[4].Content);
    }

    [Fact]
    public async Task Informational_contents_are_not_sent_back_and_an_empty_message_is_empty_text()
    {
        var acme = new ScriptedAdapter();
        await using var services = AIHost.Build(acme);
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("acme/m");

        await chat.GetResponseAsync(
        [
            new(ChatRole.User, "first"),
            new(ChatRole.Assistant, [new TextReasoningContent("thinking"), new UsageContent(new UsageDetails { OutputTokenCount = 1 })]),
            new(ChatRole.Assistant, [new TextReasoningContent("more"), new TextContent("answer")]),
            new(new ChatRole("developer"), []),
        ], cancellationToken: Ct);

        var messages = Assert.Single(acme.Calls).Request.Messages!;
        Assert.Equal(["user", "assistant", "developer"], messages.Select(m => m.Role));
        Assert.Equal("answer", messages[1].Content!.Text);
        Assert.Equal(string.Empty, messages[2].Content!.Text);
    }

    [Fact]
    public async Task A_conversation_crossing_the_gateway_into_an_IChatClient_provider_arrives_as_sent()
    {
        var inner = new FakeChatClient();
        await using var services = AIHost.Build(bifrost: b => b.AddChatClientProvider("mea", _ => inner));
        using var chat = services.GetRequiredService<IBifrostClient>().AsChatClient("mea/inner-model");
        var sent = Conversation();
        var options = new ChatOptions
        {
            Temperature = 0.5f,
            MaxOutputTokens = 77,
            StopSequences = ["STOP"],
            Seed = 3,
            Tools = [AIFunctionFactory.Create((string q) => q, "Lookup")],
            ToolMode = ChatToolMode.RequireAny,
            ResponseFormat = ChatResponseFormat.Json,
            Reasoning = new ReasoningOptions { Effort = ReasoningEffort.Medium },
            AdditionalProperties = new() { ["user"] = "u-1" },
        };

        var response = await chat.GetResponseAsync(sent, options, Ct);

        Assert.Equal("hello", response.Text);
        var received = inner.LastCall;
        Assert.Equal(sent.Select(m => m.Role), received.Messages.Select(m => m.Role));
        for (var i = 0; i < sent.Count; i++)
        {
            Assert.Equal(sent[i].Contents.Select(c => c.GetType()), received.Messages[i].Contents.Select(c => c.GetType()));
        }

        Assert.Equal(Png, ((DataContent)received.Messages[1].Contents[1]).Data.ToArray());
        Assert.Equal("low", received.Messages[1].Contents[1].AdditionalProperties!["detail"]);
        Assert.Equal(new Uri("https://example.com/cat.jpg"), ((UriContent)received.Messages[1].Contents[2]).Uri);
        Assert.Equal("audio/wav", ((DataContent)received.Messages[1].Contents[3]).MediaType);
        Assert.Equal("doc.pdf", ((DataContent)received.Messages[1].Contents[4]).Name);
        Assert.Equal("file-123", ((HostedFileContent)received.Messages[1].Contents[5]).FileId);
        var call = (FunctionCallContent)received.Messages[2].Contents[1];
        Assert.Equal(("call_1", "Lookup"), (call.CallId, call.Name));
        Assert.Equal("cats", call.Arguments!["q"]!.ToString());
        Assert.Equal("call_1", ((FunctionResultContent)received.Messages[3].Contents[0]).CallId);

        var o = received.Options!;
        Assert.Equal("inner-model", o.ModelId);
        Assert.Equal(0.5f, o.Temperature);
        Assert.Equal(77, o.MaxOutputTokens);
        Assert.Equal(["STOP"], o.StopSequences!);
        Assert.Equal(3, o.Seed);
        Assert.Equal("Lookup", Assert.Single(o.Tools!).Name);
        Assert.Equal(ChatToolMode.RequireAny, o.ToolMode);
        Assert.IsType<ChatResponseFormatJson>(o.ResponseFormat);
        Assert.Equal(ReasoningEffort.Medium, o.Reasoning!.Effort);
        Assert.Equal("u-1", o.AdditionalProperties!["user"]);
    }
}
