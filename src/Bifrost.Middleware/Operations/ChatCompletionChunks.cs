namespace Bifrost.Middleware.Operations;

/// <summary>Whole chat completions as stream chunks (a provider without streaming, a plugin's answer to a streamed call).</summary>
internal static class ChatCompletionChunks
{
    /// <summary>A whole completion as the chunks a stream would have carried: role, content, finish, then usage when asked.</summary>
    public static IEnumerable<ChatCompletionChunk> Of(ChatCompletionResponse response, bool includeUsage)
    {
        foreach (var choice in response.Choices)
        {
            ChatCompletionChunk Chunk(ChatDelta delta, string? finish) => new()
            {
                Id = response.Id,
                Created = response.Created,
                Model = response.Model,
                SystemFingerprint = response.SystemFingerprint,
                Choices = [new ChatChunkChoice { Index = choice.Index, Delta = delta, FinishReason = finish }],
            };

            yield return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
            var message = choice.Message;
            if (message?.Content is { Length: > 0 } || message?.Refusal is not null || message?.ToolCalls is { Count: > 0 })
            {
                var calls = message.ToolCalls?.Select((call, index) => new ChatCompletionToolCall { Index = index, Id = call.Id, Type = call.Type ?? "function", Function = call.Function }).ToList();
                yield return Chunk(new ChatDelta { Content = message.Content, Refusal = message.Refusal, ToolCalls = calls }, null);
            }

            yield return Chunk(new ChatDelta(), choice.FinishReason ?? "stop");
        }

        if (includeUsage && response.Usage is not null)
        {
            yield return new ChatCompletionChunk { Id = response.Id, Created = response.Created, Model = response.Model, Usage = response.Usage };
        }
    }
}
