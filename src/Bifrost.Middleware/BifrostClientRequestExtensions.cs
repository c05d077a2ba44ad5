namespace Bifrost.Middleware;

/// <summary>
/// One-line calls on <see cref="IBifrostClient"/> for the common case: a model and a prompt. They build the same
/// <see cref="ChatCompletionRequest"/> / <see cref="EmbeddingRequest"/> you would, so routing, fallbacks, keys and
/// retries are unchanged; use the request types for anything more (system messages, tools, options).
/// </summary>
public static class BifrostClientRequestExtensions
{
    /// <summary>Runs a chat completion of one user message.</summary>
    /// <param name="client">The gateway.</param>
    /// <param name="model">The model, as <c>provider/model</c> (e.g. <c>local/echo</c>) or a bare model of the default provider.</param>
    /// <param name="prompt">The user's message.</param>
    /// <param name="cancellationToken">Cancels the call, including the upstream request.</param>
    /// <returns>The completion; its text is <c>Choices[0].Message.Content</c>.</returns>
    public static Task<ChatCompletionResponse> ChatCompletionAsync(this IBifrostClient client, string model, string prompt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.ChatCompletionAsync(UserPrompt(model, prompt), cancellationToken);
    }

    /// <summary>Streams a chat completion of one user message.</summary>
    /// <param name="client">The gateway.</param>
    /// <param name="model">The model, as <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="prompt">The user's message.</param>
    /// <param name="cancellationToken">Cancels the stream, including the upstream request.</param>
    /// <returns>The chunks; the text arrives in <c>Choices[0].Delta.Content</c>.</returns>
    public static IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(this IBifrostClient client, string model, string prompt, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.ChatCompletionStreamAsync(UserPrompt(model, prompt), cancellationToken);
    }

    /// <summary>Embeds one or more texts (as floats).</summary>
    /// <param name="client">The gateway.</param>
    /// <param name="model">The model, as <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="texts">The texts; the answer has one embedding per text, in order.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The embeddings; <c>Data[i].Embedding.ToFloats()</c> is the vector of <c>texts[i]</c>.</returns>
    public static Task<EmbeddingResponse> EmbeddingsAsync(this IBifrostClient client, string model, IEnumerable<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return client.EmbeddingsAsync(new EmbeddingRequest(model, TextInput.FromStrings(texts)), cancellationToken);
    }

    private static ChatCompletionRequest UserPrompt(string model, string prompt) => new(model, ChatCompletionMessage.User(prompt));
}
