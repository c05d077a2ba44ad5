using System.Text;
using Bifrost.Middleware.Providers.Http;
using Bifrost.Middleware.Responses;

namespace Bifrost.Middleware.Providers.Cohere;

/// <summary>
/// Input-token counting with Cohere's tokenizer, <c>POST /v1/tokenize</c> (https://docs.cohere.com/reference/tokenize).
/// Cohere has no endpoint that counts a chat request, so this is an approximation: the request is translated as the chat
/// would send it, and the text of its messages (content, thinking, tool plans, tool calls' names and arguments) and of its
/// tools' definitions (name, description, JSON schema) is tokenized with the model's tokenizer — the chat template's own
/// tokens (role markers, the system preamble Cohere adds) are not counted, and images are not counted.
/// </summary>
internal sealed partial class CohereAdapter
{
    /// <summary>The longest text <c>/v1/tokenize</c> accepts; longer renderings are tokenized in pieces and summed.</summary>
    internal const int MaxTokenizeChars = 65536;

    public async Task<int?> CountInputTokensAsync(ProviderContext context, ResponsesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        var chat = new ChatCompletionRequest { Model = request.Model, Messages = ResponsesChatConverter.ToChatMessages(request) };
        if (request.Tools is { Count: > 0 } tools)
        {
            chat.Tools = [.. tools.Where(static t => t.Type == "function").Select(static t => new ChatCompletionTool { Type = "function", Function = new ChatFunctionDefinition { Name = t.Name, Description = t.Description, Parameters = t.Parameters } })];
        }

        var text = RenderForCounting(CohereRequestTranslator.Translate(chat));
        var total = 0;
        var start = 0;
        while (start < text.Length)
        {
            var length = Math.Min(MaxTokenizeChars, text.Length - start);
            if (length == MaxTokenizeChars && char.IsHighSurrogate(text[start + length - 1]))
            {
                length--; // never split a surrogate pair
            }

            var message = CreateRequest(context, HttpMethod.Post, "v1/tokenize", stream: false);
            message.Content = UpstreamClient.Json(new CohereTokenizeRequest { Text = text.Substring(start, length), Model = context.Model }, CohereJsonContext.Wire.CohereTokenizeRequest);
            var answer = await _http.SendForJsonAsync(context, message, CohereJsonContext.Wire.CohereTokenizeResponse, cancellationToken).ConfigureAwait(false);
            total += answer.Tokens?.Count ?? throw UpstreamHttp.InvalidResponse(context, "a tokenize answer without tokens");
            start += length;
        }

        return total;
    }

    /// <summary>The text of a chat request as counted: each message's text parts, thinking, tool plan and tool calls, then each tool's definition, one per line.</summary>
    internal static string RenderForCounting(CohereChatRequest request)
    {
        var text = new StringBuilder();
        void Line(string? value)
        {
            if (!string.IsNullOrEmpty(value))
            {
                if (text.Length > 0)
                {
                    text.Append('\n');
                }

                text.Append(value);
            }
        }

        foreach (var message in request.Messages)
        {
            if (message.Content is { ValueKind: JsonValueKind.String } content)
            {
                Line(content.GetString());
            }
            else if (message.Content is { ValueKind: JsonValueKind.Array } blocks)
            {
                foreach (var block in blocks.EnumerateArray())
                {
                    if (block.ValueKind != JsonValueKind.Object)
                    {
                        continue;
                    }

                    if (block.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String)
                    {
                        Line(t.GetString());
                    }
                    else if (block.TryGetProperty("thinking", out var thinking) && thinking.ValueKind == JsonValueKind.String)
                    {
                        Line(thinking.GetString());
                    }
                    else if (block.TryGetProperty("document", out var document))
                    {
                        Line(document.GetRawText());
                    }
                }
            }

            Line(message.ToolPlan);
            foreach (var call in message.ToolCalls ?? [])
            {
                Line(call.Function?.Name);
                Line(call.Function?.Arguments);
            }
        }

        foreach (var tool in request.Tools ?? [])
        {
            Line(tool.Function?.Name);
            Line(tool.Function?.Description);
            Line(tool.Function?.Parameters is { ValueKind: not JsonValueKind.Undefined and not JsonValueKind.Null } parameters ? parameters.GetRawText() : null);
        }

        return text.ToString();
    }
}
