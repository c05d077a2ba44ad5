using System.Runtime.InteropServices;
using System.Text;

namespace Bifrost.Middleware.Tokenization;

/// <summary>
/// A quick estimate of a chat request's input tokens for the governance reservation (<see cref="Governance.GovernanceLayer"/>):
/// one token per four UTF-8 bytes of every text the prompt carries (roles, contents, names, refusals, tool calls, tool
/// definitions), OpenAI's framing per message, and a flat figure per image (85 for <c>low</c> detail, else 765 — a
/// 1024×1024 image at high detail). No tokenizer runs: this costs tens of nanoseconds where the exact count
/// (<see cref="TokenCounter.CountChat"/>) costs about a microsecond. It is only a reservation, settled against the
/// usage the provider reports once the call ends, so its error moves no charge. Against the exact o200k_base count, prose,
/// code, JSON, CJK text and emoji land within ±30 %; digit-heavy text is under-estimated by up to 2.5× (the encoding cuts
/// digits in groups of three) — <c>TokenEstimateTests</c> holds both bounds.
/// </summary>
internal static class TokenEstimate
{
    private const int BytesPerToken = 4;
    private const int TokensPerMessage = 3;
    private const int ReplyPriming = 3;
    private const int TokensPerTool = 8;
    private const int LowDetailImage = 85;
    private const int HighDetailImage = 765;

    public static long Chat(IList<ChatCompletionMessage>? messages, IList<ChatCompletionTool>? tools)
    {
        long bytes = 0;
        long tokens = ReplyPriming;
        if (messages is not null)
        {
            for (var m = 0; m < messages.Count; m++) // indexed: no boxed enumerator per call
            {
                var message = messages[m];
                if (message is null)
                {
                    continue;
                }

                tokens += TokensPerMessage;
                bytes += Bytes(message.Role) + Bytes(message.Name) + Bytes(message.Refusal);
                if (message.Content is { } content)
                {
                    if (content.Text is not null)
                    {
                        bytes += Bytes(content.Text);
                    }
                    else
                    {
                        var parts = content.Parts!;
                        for (var p = 0; p < parts.Count; p++)
                        {
                            var part = parts[p];
                            if (part is null)
                            {
                                continue;
                            }

                            if (part.ImageUrl is { } image)
                            {
                                tokens += string.Equals(image.Detail, "low", StringComparison.OrdinalIgnoreCase) ? LowDetailImage : HighDetailImage;
                            }

                            // Audio and file parts (base64 data) are left out, as in the exact count.
                            bytes += Bytes(part.Text) + (string.Equals(part.Type, "refusal", StringComparison.Ordinal) ? Raw(part.AdditionalProperties) : 0);
                        }
                    }
                }

                if (message.ToolCalls is { } calls)
                {
                    for (var c = 0; c < calls.Count; c++)
                    {
                        var call = calls[c];
                        bytes += Bytes(call?.Function?.Name) + Bytes(call?.Function?.Arguments);
                    }
                }
            }
        }

        if (tools is not null)
        {
            for (var t = 0; t < tools.Count; t++)
            {
                var tool = tools[t];
                if (tool is null)
                {
                    continue;
                }

                tokens += TokensPerTool;
                bytes += Raw(tool.AdditionalProperties);
                if (tool.Function is { } function)
                {
                    bytes += Bytes(function.Name) + Bytes(function.Description) + Raw(function.Parameters) + Raw(function.AdditionalProperties);
                }
            }
        }

        return tokens + ((bytes + BytesPerToken - 1) / BytesPerToken);
    }

    /// <summary>The input of an embeddings or text-completion request: a quarter of each text's UTF-8 bytes, or the token ids given.</summary>
    public static long Text(TextInput? input)
    {
        long tokens = 0;
        if (input?.Texts is { } texts)
        {
            long bytes = 0;
            for (var i = 0; i < texts.Count; i++)
            {
                bytes += Bytes(texts[i]);
            }

            tokens = (bytes + BytesPerToken - 1) / BytesPerToken;
        }
        else if (input?.Tokens is { } ids)
        {
            for (var i = 0; i < ids.Count; i++)
            {
                tokens += ids[i]?.Length ?? 0;
            }
        }

        return tokens;
    }

    private static int Bytes(string? text) => text is null ? 0 : Encoding.UTF8.GetByteCount(text);

    // The JSON text of a value as it was read (no copy); a value built in code is measured the same way.
    private static int Raw(JsonElement? value) =>
        value is { ValueKind: not JsonValueKind.Undefined } element ? JsonMarshal.GetRawUtf8Value(element).Length : 0;

    private static long Raw(IDictionary<string, JsonElement>? properties)
    {
        if (properties is null)
        {
            return 0;
        }

        long bytes = 0;
        foreach (var (name, value) in properties)
        {
            bytes += Bytes(name) + Raw(value);
        }

        return bytes;
    }
}
