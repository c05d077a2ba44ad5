using System.Reflection;
using Bifrost.Middleware;
using Bifrost.Middleware.Client;
using Microsoft.Extensions.AI;
using OpenAI.Chat;

// A user's file, outside the Bifrost.Middleware namespace, importing Bifrost's wire types (Bifrost.Middleware.OpenAI, a
// global using of this project, as are Bifrost.Middleware.Batches/Files/Jobs/Plugins/Providers) next to
// Microsoft.Extensions.AI and OpenAI.Chat: every Bifrost name below resolves without an alias or a qualifier.
// (Microsoft.Extensions.AI and OpenAI.Chat clash with each other — ChatMessage, ChatResponseFormat, ChatFinishReason —
// which no Bifrost import changes; those two are qualified here.)
namespace ConsumerApp;

public sealed class NameCoexistenceTests
{
    [Fact]
    public void Bifrost_MEAI_and_OpenAI_Chat_types_are_used_together_unqualified()
    {
        // Bifrost.Middleware.OpenAI
        ChatCompletionRequest request = new("local/echo", ChatCompletionMessage.System("terse"), ChatCompletionMessage.User("hi"))
        {
            Tools = [new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = "f" } }],
            ResponseFormat = new ChatCompletionResponseFormat { Type = "json_object" },
        };
        ChatCompletionContent content = "text";
        ChatCompletionToolCall call = new() { Id = "call_1", Type = "function", Function = new ChatCompletionFunctionCall { Name = "f", Arguments = "{}" } };
        ChatContentPart part = new() { Type = "text", Text = "part" };
        EmbeddingRequest embedding = new("local/echo", "one");
        ResponsesRequest responses = new("local/echo", "hi");
        BifrostAsyncOptions asyncOptions = new();

        // Microsoft.Extensions.AI
        ChatRole role = ChatRole.User;
        ChatOptions chatOptions = new() { ModelId = "local/echo" };
        AIContent aiContent = new TextContent("hi");
        Microsoft.Extensions.AI.ChatMessage aiMessage = new(role, [aiContent]);
        UsageDetails usage = new() { InputTokenCount = 1 };

        // OpenAI.Chat
        ChatMessageContent sdkContent = new("hi");
        ChatTool sdkTool = ChatTool.CreateFunctionTool("f");
        ChatToolCall sdkCall = ChatToolCall.CreateFunctionToolCall("call_1", "f", BinaryData.FromString("{}"));
        UserChatMessage sdkMessage = new(sdkContent);
        ChatCompletionOptions sdkOptions = new() { Tools = { sdkTool } };

        Assert.Equal("user", request.Messages![1].Role);
        Assert.Equal("text", content.Text);
        Assert.Equal("f", call.Function!.Name);
        Assert.Equal("part", part.Text);
        Assert.Equal(1, embedding.Input!.Count);
        Assert.Equal("hi", responses.Input!.Text);
        Assert.Equal(TimeSpan.FromSeconds(1), asyncOptions.PollInterval);
        Assert.Equal("hi", aiMessage.Text);
        Assert.Equal("local/echo", chatOptions.ModelId);
        Assert.Equal(1, usage.InputTokenCount);
        Assert.Equal("hi", sdkMessage.Content[0].Text);
        Assert.Equal("call_1", sdkCall.Id);
        Assert.Single(sdkOptions.Tools);
        Assert.NotNull(typeof(IBifrostClient));
    }

    [Fact]
    public void No_public_Bifrost_type_shares_a_name_with_a_public_MEAI_or_OpenAI_type()
    {
        static IEnumerable<Type> Public(Assembly assembly, Func<string?, bool> inNamespace) =>
            assembly.GetExportedTypes().Where(t => !t.IsNested && inNamespace(t.Namespace));

        var theirs = Public(typeof(IChatClient).Assembly, ns => ns == "Microsoft.Extensions.AI")
            .Concat(Public(typeof(ChatClient).Assembly, ns => ns is not null && (ns == "OpenAI" || ns.StartsWith("OpenAI.", StringComparison.Ordinal))))
            .ToLookup(Name);
        var ours = Public(typeof(IBifrostClient).Assembly, ns => ns is not null && ns.StartsWith("Bifrost.Middleware", StringComparison.Ordinal))
            .Concat(Public(typeof(BifrostAsyncOptions).Assembly, _ => true));

        var clashes = ours.Where(t => theirs.Contains(Name(t)))
            .Select(t => $"{t.FullName} ~ {string.Join(", ", theirs[Name(t)].Select(o => o.FullName))}")
            .ToList();

        Assert.Empty(clashes);

        static string Name(Type type) => type.Name.Split('`')[0];
    }
}
