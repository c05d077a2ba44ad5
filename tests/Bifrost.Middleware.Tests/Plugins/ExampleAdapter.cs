// This file is the example of the README's "Writing a provider plugin" section, compiled and run through the adapter conformance
// suite (ExampleAdapterConformanceTests). Keep the two in sync.
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bifrost.Middleware;
using Bifrost.Middleware.OpenAI;
using Bifrost.Middleware.Providers;

namespace Acme.Bifrost;

/// <summary>
/// A provider plugin for the (fictional) Acme LLM API:
/// <c>POST {BaseUrl}/generate</c> with <c>{"model","prompt","max_tokens","stream"}</c> answers
/// <c>{"id","text","input_tokens","output_tokens"}</c>, or with <c>"stream": true</c> one JSON object per line
/// (<c>{"delta":"..."}</c>, then <c>{"done":true,"id","input_tokens","output_tokens"}</c>). Errors are
/// <c>{"error":"message"}</c> with an HTTP status and, for 429, a Retry-After header.
/// </summary>
public sealed class AcmeAdapter(IHttpClientFactory httpClientFactory, TimeProvider time) : IProviderAdapter
{
    /// <summary>The named HttpClient the adapter uses (register it with <c>services.AddHttpClient(AcmeAdapter.HttpClientName)</c>).</summary>
    public const string HttpClientName = "acme";

    public async Task<ChatCompletionResponse> ChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(context, request, stream: false, cancellationToken);
        var answer = await response.Content.ReadFromJsonAsync(AcmeJson.Default.AcmeAnswer, cancellationToken)
            ?? throw BifrostException.Provider(502, "api_error", "invalid_provider_response", "Acme returned an empty body.");
        return new ChatCompletionResponse
        {
            Id = answer.Id,
            Created = time.GetUtcNow().ToUnixTimeSeconds(),
            Model = context.Model,
            Choices = [new ChatChoice { Index = 0, Message = new ChatResponseMessage { Content = answer.Text }, FinishReason = "stop" }],
            Usage = Usage(answer.InputTokens, answer.OutputTokens),
        };
    }

    public async IAsyncEnumerable<ChatCompletionChunk> StreamChatCompletionAsync(ProviderContext context, ChatCompletionRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var response = await SendAsync(context, request, stream: true, cancellationToken);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(body, Encoding.UTF8);
        var id = "acme-" + Guid.NewGuid().ToString("N");
        var created = time.GetUtcNow().ToUnixTimeSeconds();
        ChatCompletionChunk Chunk(ChatDelta delta, string? finishReason) => new()
        {
            Id = id,
            Created = created,
            Model = context.Model,
            Choices = [new ChatChunkChoice { Index = 0, Delta = delta, FinishReason = finishReason }],
        };

        // 1. The role comes first.
        yield return Chunk(new ChatDelta { Role = "assistant", Content = string.Empty }, null);
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                continue;
            }

            var item = JsonSerializer.Deserialize(line, AcmeJson.Default.AcmeStreamLine)
                ?? throw BifrostException.Provider(502, "api_error", "invalid_provider_response", "Acme sent an empty stream line.");
            if (!item.Done)
            {
                // 2. Content deltas, finish_reason null.
                yield return Chunk(new ChatDelta { Content = item.Delta }, null);
                continue;
            }

            // 3. One chunk with the finish reason, 4. the usage chunk (empty choices) when asked, 5. nothing after.
            yield return Chunk(new ChatDelta(), "stop");
            if (request.StreamOptions?.IncludeUsage == true)
            {
                yield return new ChatCompletionChunk { Id = id, Created = created, Model = context.Model, Usage = Usage(item.InputTokens, item.OutputTokens) };
            }

            yield break;
        }

        throw BifrostException.Provider(502, "api_error", "incomplete_stream", "Acme ended the stream early.");
    }

    // Embeddings, text completions, the Responses API and token counting keep their default implementations:
    // a 400 "unsupported_operation" (Responses requests are converted to chat by the gateway; token counts are estimated).

    private async Task<HttpResponseMessage> SendAsync(ProviderContext context, ChatCompletionRequest request, bool stream, CancellationToken cancellationToken)
    {
        var prompt = new StringBuilder();
        foreach (var turn in request.Messages ?? [])
        {
            prompt.Append(turn.Role).Append(": ").AppendLine(turn.Content?.GetText());
        }

        var baseUrl = context.Options.BaseUrl ?? throw new InvalidOperationException($"Provider '{context.ProviderName}' needs a BaseUrl.");
        using var message = new HttpRequestMessage(HttpMethod.Post, new Uri(baseUrl.TrimEnd('/') + "/generate"))
        {
            Content = JsonContent.Create(
                new AcmeRequest(context.Model, prompt.ToString(), request.MaxCompletionTokens ?? request.MaxTokens, stream),
                AcmeJson.Default.AcmeRequest),
        };
        if (context.ApiKey is { Length: > 0 } key)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        var client = httpClientFactory.CreateClient(HttpClientName);
        var response = await client.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }

        // Pass the provider's status and message through; BifrostException.Provider marks 408/409/429/5xx retryable
        // and the gateway honours RetryAfter before retrying or falling back.
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            string? error = null;
            try
            {
                error = JsonSerializer.Deserialize(text, AcmeJson.Default.AcmeError)?.Error;
            }
            catch (JsonException)
            {
                // not JSON: use the text
            }

            var status = (int)response.StatusCode;
            throw BifrostException.Provider(
                status,
                type: null,
                code: null,
                message: error ?? (text.Length > 0 ? text : $"Acme answered {status}."),
                retryAfter: response.Headers.RetryAfter?.Delta);
        }
    }

    private static ChatUsage Usage(int input, int output) => new() { PromptTokens = input, CompletionTokens = output, TotalTokens = input + output };
}

internal sealed record AcmeRequest(string Model, string Prompt, int? MaxTokens, bool Stream);

internal sealed record AcmeAnswer(string Id, string Text, int InputTokens, int OutputTokens);

internal sealed record AcmeStreamLine(string? Delta, bool Done, int InputTokens, int OutputTokens);

internal sealed record AcmeError(string? Error);

/// <summary>Source-generated JSON for the Acme wire types (snake_case), as the gateway does for its own.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AcmeRequest))]
[JsonSerializable(typeof(AcmeAnswer))]
[JsonSerializable(typeof(AcmeStreamLine))]
[JsonSerializable(typeof(AcmeError))]
internal sealed partial class AcmeJson : JsonSerializerContext;
