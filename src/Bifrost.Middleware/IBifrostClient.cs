namespace Bifrost.Middleware;

/// <summary>
/// The gateway, in process: the same routing, fallbacks, key selection and retries as the HTTP endpoints,
/// without HTTP. Inject it anywhere after <c>AddBifrost</c>. Failures throw <see cref="BifrostException"/>.
/// </summary>
public interface IBifrostClient
{
    /// <summary>Runs a chat completion.</summary>
    /// <param name="request">The request; <c>model</c> is <c>provider/model</c> or a bare model of the default provider.</param>
    /// <param name="cancellationToken">Cancels the call, including the upstream request.</param>
    /// <returns>The completion, with <c>extra_fields</c>.</returns>
    Task<ChatCompletionResponse> ChatCompletionAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams a chat completion. Retries and fallbacks apply until the first chunk arrives, never after.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream, including the upstream request.</param>
    /// <returns>The chunks, each with <c>extra_fields</c> and its <c>chunk_index</c>.</returns>
    IAsyncEnumerable<ChatCompletionChunk> ChatCompletionStreamAsync(ChatCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Creates embeddings, in the encoding the request asks for (<c>float</c> or <c>base64</c>).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<EmbeddingResponse> EmbeddingsAsync(EmbeddingRequest request, CancellationToken cancellationToken = default);

    /// <summary>Runs a legacy text completion.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<TextCompletionResponse> TextCompletionAsync(TextCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams a legacy text completion. Retries and fallbacks apply until the first chunk.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream.</param>
    IAsyncEnumerable<TextCompletionResponse> TextCompletionStreamAsync(TextCompletionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Runs a Responses API request: natively on providers that have the API, converted to chat completions otherwise.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<ResponsesResponse> ResponsesAsync(ResponsesRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams a Responses API request as its event sequence (<c>response.created</c>, <c>response.output_text.delta</c>, ..., <c>response.completed</c>).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream.</param>
    IAsyncEnumerable<ResponsesStreamEvent> ResponsesStreamAsync(ResponsesRequest request, CancellationToken cancellationToken = default);

    /// <summary>Counts a Responses request's input tokens: by the provider when it can, otherwise locally (<c>extra_fields.count_method</c> says which).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<InputTokensResponse> CountInputTokensAsync(ResponsesRequest request, CancellationToken cancellationToken = default);

    /// <summary>Lists the models of every provider, ids as <c>provider/model</c>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    Task<ModelList> ListModelsAsync(CancellationToken cancellationToken = default);

    // Moderations, images, rerank and audio in process (issue 17, img).

    /// <summary>Classifies text (and images) for policy violations.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The moderation results, with <c>extra_fields</c>.</returns>
    Task<ModerationResponse> ModerationAsync(ModerationRequest request, CancellationToken cancellationToken = default);

    /// <summary>Generates images from a prompt.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The images, with <c>extra_fields</c>.</returns>
    Task<ImageResponse> ImageGenerationAsync(ImageRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams an image generation (<c>stream: true</c>, <c>partial_images</c>): partial images, then each final one. Retries and fallbacks apply until the first event.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream.</param>
    /// <returns>The events, each with <c>extra_fields</c>.</returns>
    IAsyncEnumerable<ImageStreamEvent> ImageGenerationStreamAsync(ImageRequest request, CancellationToken cancellationToken = default);

    /// <summary>Edits images as the prompt describes (<see cref="ImageEditRequest.Images"/>: streams the caller owns, read from their start by each attempt).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The images, with <c>extra_fields</c>.</returns>
    Task<ImageResponse> ImageEditAsync(ImageEditRequest request, CancellationToken cancellationToken = default);

    /// <summary>Streams an image edit (<c>stream: true</c>, <c>partial_images</c>): partial images, then each final one. Retries and fallbacks apply until the first event.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the stream.</param>
    /// <returns>The events (<c>image_edit.partial_image</c>, <c>image_edit.completed</c>), each with <c>extra_fields</c>.</returns>
    IAsyncEnumerable<ImageStreamEvent> ImageEditStreamAsync(ImageEditRequest request, CancellationToken cancellationToken = default);

    /// <summary>Makes variations of an image (the one in <see cref="ImageEditRequest.Images"/>).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The images, with <c>extra_fields</c>.</returns>
    Task<ImageResponse> ImageVariationAsync(ImageEditRequest request, CancellationToken cancellationToken = default);

    /// <summary>Ranks documents by relevance to a query, most relevant first.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The ranking, with <c>extra_fields</c>.</returns>
    Task<RerankResponse> RerankAsync(RerankRequest request, CancellationToken cancellationToken = default);

    /// <summary>Generates speech: the provider's audio bytes as they arrive (dispose the answer to release them).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The audio and its content type, with <c>extra_fields</c>.</returns>
    Task<AudioResponse> SpeechAsync(SpeechRequest request, CancellationToken cancellationToken = default);

    /// <summary>Transcribes audio (<see cref="TranscriptionRequest.File"/>: a readable, seekable stream the caller owns): the provider's JSON, text or subtitles as they arrive.</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The transcription's body and content type, with <c>extra_fields</c>.</returns>
    Task<AudioResponse> TranscriptionAsync(TranscriptionRequest request, CancellationToken cancellationToken = default);

    /// <summary>Translates audio into English text (<see cref="TranscriptionRequest.File"/>: a readable, seekable stream the caller owns).</summary>
    /// <param name="request">The request.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The translation's body and content type, with <c>extra_fields</c>.</returns>
    Task<AudioResponse> TranslationAsync(TranscriptionRequest request, CancellationToken cancellationToken = default);
}
