using System.Globalization;
using Bifrost.Middleware.Gateway;
using Bifrost.Middleware.Providers.Http;

namespace Bifrost.Middleware.Providers.Bedrock;

/// <summary>
/// Image generation and rerank on Bedrock.
/// <list type="bullet">
/// <item>Images: InvokeModel (<c>POST /model/{modelId}/invoke</c>) on Amazon Nova Canvas (<c>amazon.nova-canvas-*</c>) and
/// Titan Image Generator (<c>amazon.titan-image-generator-*</c>), which share the text-to-image body
/// (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-req-resp-structure.html,
/// https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-image.html): <c>taskType: TEXT_IMAGE</c>,
/// <c>textToImageParams.text</c> = <c>prompt</c> (and <c>negativeText</c> = the extra <c>negative_prompt</c>),
/// <c>imageGenerationConfig</c> with <c>numberOfImages</c> = <c>n</c> (1 to <see cref="MaxImages"/>), <c>width</c> /
/// <c>height</c> from <c>size</c> (<c>WIDTHxHEIGHT</c>; <c>auto</c> or none: the model's default), <c>quality</c>
/// (<c>standard</c>, <c>low</c>, <c>medium</c> → <c>standard</c>; <c>hd</c>, <c>high</c> → <c>premium</c>), and the extras
/// <c>seed</c> and <c>cfg_scale</c>. The answer's <c>images[]</c> (base64 PNG) become <c>data[].b64_json</c>.
/// <c>response_format: url</c> is a 400 <c>unsupported_parameter</c>: Bedrock answers bytes and the gateway hosts no files (a
/// data URL in <c>url</c> would send clients fetching a multi-megabyte string); so are <c>style</c>, a transparent
/// <c>background</c> and an <c>output_format</c> other than <c>png</c>. Bedrock's content filters
/// (https://docs.aws.amazon.com/nova/latest/userguide/image-gen-errors.html) — a 400 ValidationException "blocked by our
/// content filters" for the prompt, or an answer whose <c>error</c> says all images were blocked — are a 400
/// <c>content_policy_violation</c> (OpenAI's code for it); when only some images were blocked, the others are answered.</item>
/// <item>Rerank: <c>POST /rerank</c> on Agents for Amazon Bedrock Runtime
/// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_agent-runtime_Rerank.html), host
/// <c>bedrock-agent-runtime.{Region}.amazonaws.com</c> (see <see cref="SiblingService"/>), signed for service <c>bedrock</c>:
/// <c>queries[{type: TEXT, textQuery.text}]</c>, <c>sources[{type: INLINE, inlineDocumentSource{type: TEXT, textDocument.text}}]</c>,
/// <c>rerankingConfiguration{type: BEDROCK_RERANKING_MODEL, bedrockRerankingConfiguration{numberOfResults, modelConfiguration.modelArn}}</c>
/// with the model's foundation-model ARN (<c>arn:aws:bedrock:{Region}::foundation-model/{model}</c>, or the model when it is
/// an ARN), for <c>amazon.rerank-v1:0</c> and <c>cohere.rerank-v3-5:0</c>. <c>numberOfResults</c> is <c>top_n</c>, else every
/// document. Every page (<c>nextToken</c>) is read; the results' <c>index</c> (the source's position) and
/// <c>relevanceScore</c> become our results, most relevant first. Bedrock API keys cannot call Agents for Amazon Bedrock
/// Runtime (https://docs.aws.amazon.com/bedrock/latest/userguide/api-keys-reference.html): a provider with keys and no
/// SigV4 authenticator answers a 400 <c>unsupported_operation</c> without calling.</item>
/// </list>
/// </summary>
internal sealed partial class BedrockAdapter
{
    /// <summary>The most images one request may ask for (Nova Canvas and Titan Image Generator: 1 to 5).</summary>
    internal const int MaxImages = 5;

    /// <summary>The most rerank pages read for one request.</summary>
    internal const int MaxRerankPages = 20;

    /// <summary>Whether a model id (or profile / ARN) names Nova Canvas or Titan Image Generator.</summary>
    internal static bool IsImageModel(string model) =>
        model.Contains("amazon.nova-canvas", StringComparison.Ordinal) || model.Contains("amazon.titan-image-generator", StringComparison.Ordinal);

    /// <summary>Whether a model id (or ARN) names a Bedrock reranker (<c>amazon.rerank-*</c>, <c>cohere.rerank-*</c>).</summary>
    internal static bool IsRerankModel(string model) =>
        model.Contains("amazon.rerank-", StringComparison.Ordinal) || model.Contains("cohere.rerank-", StringComparison.Ordinal);

    public async Task<ImageResponse> ImageGenerationAsync(ProviderContext context, ImageRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (!IsImageModel(context.Model))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' generates images with Amazon Nova Canvas (amazon.nova-canvas-*) and Titan Image Generator (amazon.titan-image-generator-*) models only, not '{context.Model}'.", "model");
        }

        var body = ImageBody(context, request);
        using var message = CreateRequest(context, "invoke", stream: false);
        message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.BedrockImageRequest);
        HttpResponseMessage response;
        try
        {
            response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
        }
        catch (BifrostException ex) when (ex.StatusCode == 400 && IsContentFilterMessage(ex.Error.Error.Message))
        {
            throw ContentPolicy(ex.Error.Error.Message);
        }

        BedrockImageResponse answer;
        using (response)
        {
            answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockImageResponse, cancellationToken).ConfigureAwait(false);
        }

        var result = new ImageResponse { Created = time.GetUtcNow().ToUnixTimeSeconds(), Model = context.Model };
        foreach (var image in answer.Images ?? [])
        {
            if (string.IsNullOrEmpty(image))
            {
                continue;
            }

            if (!IsBase64(image))
            {
                throw UpstreamHttp.InvalidResponse(context, "image data that is not base64");
            }

            result.Data.Add(new ImageData { B64Json = image });
        }

        if (result.Data.Count == 0)
        {
            throw answer.Error is { Length: > 0 } error ? ContentPolicy(error) : UpstreamHttp.InvalidResponse(context, "an answer without images");
        }

        if (answer.Error is { Length: > 0 } partial)
        {
            Log.ImagesFiltered(logger, context.ProviderName, body.ImageGenerationConfig.NumberOfImages - result.Data.Count, body.ImageGenerationConfig.NumberOfImages, partial);
        }

        return result;
    }

    /// <summary>The text-to-image body of a request (its parameters checked: a 400 before any call).</summary>
    internal static BedrockImageRequest ImageBody(ProviderContext context, ImageRequest request)
    {
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            throw BifrostErrors.MissingParameter("'prompt' is required.", "prompt");
        }

        var n = request.N ?? 1;
        if (n is < 1 or > MaxImages)
        {
            throw BifrostErrors.InvalidValue($"'n' must be between 1 and {MaxImages} on provider '{context.ProviderName}' (Bedrock's image models generate at most {MaxImages} images per request).", "n");
        }

        switch (request.ResponseFormat)
        {
            case null or "b64_json":
                break;
            case "url":
                throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' answers image bytes only: use 'response_format': 'b64_json' (the default).", "response_format");
            default:
                throw BifrostErrors.InvalidValue("'response_format' must be 'url' or 'b64_json'.", "response_format");
        }

        if (request.Style is not null)
        {
            throw BifrostErrors.UnsupportedParameter($"'style' is not supported by provider '{context.ProviderName}' (Bedrock's image models take no style).", "style");
        }

        if (string.Equals(request.Background, "transparent", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedParameter($"A transparent 'background' is not supported by provider '{context.ProviderName}'.", "background");
        }

        if (request.OutputFormat is { } format && !string.Equals(format, "png", StringComparison.Ordinal))
        {
            throw BifrostErrors.UnsupportedParameter($"Provider '{context.ProviderName}' answers PNG images only: 'output_format' must be 'png'.", "output_format");
        }

        var config = new BedrockImageGenerationConfig
        {
            NumberOfImages = n,
            Quality = request.Quality switch
            {
                null or "auto" => null,
                "standard" or "low" or "medium" => "standard",
                "hd" or "high" or "premium" => "premium",
                _ => throw BifrostErrors.InvalidValue("'quality' must be standard, hd, low, medium, high or auto.", "quality"),
            },
        };
        (config.Width, config.Height) = ImageSize(request.Size);
        var parameters = new BedrockTextToImageParams { Text = request.Prompt };
        if (request.AdditionalProperties is { Count: > 0 } extra)
        {
            if (extra.TryGetValue("seed", out var seed))
            {
                config.Seed = seed.ValueKind == JsonValueKind.Number && seed.TryGetInt64(out var value) && value >= 0
                    ? value
                    : throw BifrostErrors.InvalidValue("'seed' must be a non-negative integer.", "seed");
            }

            if (extra.TryGetValue("cfg_scale", out var scale))
            {
                config.CfgScale = scale.ValueKind == JsonValueKind.Number ? scale.GetDouble() : throw BifrostErrors.InvalidType("'cfg_scale' must be a number.", "cfg_scale");
            }

            if (extra.TryGetValue("negative_prompt", out var negative))
            {
                parameters.NegativeText = negative.ValueKind == JsonValueKind.String ? negative.GetString() : throw BifrostErrors.InvalidType("'negative_prompt' must be a string.", "negative_prompt");
            }
        }

        return new BedrockImageRequest { TextToImageParams = parameters, ImageGenerationConfig = config };
    }

    /// <summary><c>WIDTHxHEIGHT</c> → (width, height); none or <c>auto</c> → the model's default.</summary>
    private static (int? Width, int? Height) ImageSize(string? size)
    {
        if (size is null || string.Equals(size, "auto", StringComparison.Ordinal))
        {
            return (null, null);
        }

        var x = size.IndexOf('x', StringComparison.Ordinal);
        return x > 0
            && int.TryParse(size.AsSpan(0, x), NumberStyles.None, CultureInfo.InvariantCulture, out var width)
            && int.TryParse(size.AsSpan(x + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var height)
            && width > 0 && height > 0
            ? (width, height)
            : throw BifrostErrors.InvalidValue("'size' must be WIDTHxHEIGHT (e.g. 1024x1024) or auto.", "size");
    }

    private static bool IsContentFilterMessage(string? message) =>
        message?.Contains("content filters", StringComparison.OrdinalIgnoreCase) == true;

    private static BifrostException ContentPolicy(string message) =>
        BifrostErrors.ProviderError(400, BifrostErrors.InvalidRequestType, "content_policy_violation", message);

    private static bool IsBase64(string value)
    {
        var buffer = new byte[(value.Length * 3 / 4) + 3];
        return Convert.TryFromBase64String(value, buffer, out _);
    }

    public async Task<RerankResponse> RerankAsync(ProviderContext context, RerankRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (!IsRerankModel(context.Model))
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' reranks with amazon.rerank-* and cohere.rerank-* models only, not '{context.Model}'.", "model");
        }

        if (context.ApiKey is { Length: > 0 } && context.Authenticator is null)
        {
            throw BifrostErrors.UnsupportedOperation($"Provider '{context.ProviderName}' authenticates with a Bedrock API key, which Bedrock's rerank (Agents for Amazon Bedrock Runtime) does not accept: sign its requests with SigV4 (UseBedrockSigV4) instead.", "model");
        }

        if (string.IsNullOrWhiteSpace(request.Query))
        {
            throw BifrostErrors.MissingParameter("'query' is required.", "query");
        }

        var documents = RerankInput.Read(request.Documents);
        if (request.TopN is < 1)
        {
            throw BifrostErrors.InvalidValue("'top_n' must be at least 1.", "top_n");
        }

        var body = new BedrockRerankRequest
        {
            Queries = [new BedrockRerankQuery { TextQuery = new BedrockRerankText { Text = request.Query } }],
            Sources = [.. documents.Select(static d => new BedrockRerankSource { InlineDocumentSource = new BedrockRerankDocument { TextDocument = new BedrockRerankText { Text = d } } })],
        };
        body.RerankingConfiguration.BedrockRerankingConfiguration.NumberOfResults = Math.Min(request.TopN ?? documents.Count, documents.Count);
        body.RerankingConfiguration.BedrockRerankingConfiguration.ModelConfiguration.ModelArn = RerankModelArn(context);
        var endpoint = new Uri(SiblingService(context, "bedrock-agent-runtime") + "/rerank", UriKind.Absolute);
        var results = new List<BedrockRerankResult>(documents.Count);
        string? requestId = null;
        for (var page = 0; page < MaxRerankPages; page++)
        {
            BedrockRerankResponse answer;
            using (var message = _http.CreateRequest(context, HttpMethod.Post, endpoint, stream: false))
            {
                message.Content = UpstreamClient.Json(body, BedrockJsonContext.Wire.BedrockRerankRequest);
                using var response = await SendAsync(context, message, cancellationToken).ConfigureAwait(false);
                requestId ??= response.Headers.TryGetValues("x-amzn-RequestId", out var ids) ? ids.FirstOrDefault() : null;
                answer = await ReadJsonAsync(context, response, BedrockJsonContext.Wire.BedrockRerankResponse, cancellationToken).ConfigureAwait(false);
            }

            foreach (var result in answer.Results ?? [])
            {
                if (result is null || result.Index < 0 || result.Index >= documents.Count)
                {
                    throw UpstreamHttp.InvalidResponse(context, "a rerank result whose index is not one of the documents");
                }

                results.Add(result);
            }

            if (string.IsNullOrEmpty(answer.NextToken))
            {
                break;
            }

            body.NextToken = answer.NextToken;
        }

        results.Sort(static (a, b) => b.RelevanceScore != a.RelevanceScore ? b.RelevanceScore.CompareTo(a.RelevanceScore) : a.Index.CompareTo(b.Index));
        var reply = new RerankResponse { Id = string.IsNullOrEmpty(requestId) ? null : requestId, Model = context.Model };
        foreach (var result in results.Take(request.TopN ?? results.Count))
        {
            reply.Results.Add(new RerankResult
            {
                Index = result.Index,
                RelevanceScore = result.RelevanceScore,
                Document = request.ReturnDocuments == true ? new RerankDocument { Text = documents[result.Index] } : null,
            });
        }

        return reply;
    }

    /// <summary>The model as Bedrock's rerank names it: an ARN as it is, else <c>arn:{partition}:bedrock:{Region}::foundation-model/{model}</c>.</summary>
    internal static string RerankModelArn(ProviderContext context)
    {
        if (context.Model.StartsWith("arn:", StringComparison.Ordinal))
        {
            return context.Model;
        }

        var region = context.Options.Region?.Trim() ?? string.Empty;
        var partition = region.StartsWith("us-gov-", StringComparison.Ordinal) ? "aws-us-gov"
            : region.StartsWith("cn-", StringComparison.Ordinal) ? "aws-cn"
            : "aws";
        return $"arn:{partition}:bedrock:{region}::foundation-model/{context.Model}";
    }

    private static partial class Log
    {
        [LoggerMessage(1502, LogLevel.Information, "Provider '{Provider}' answered {Missing} of {Asked} images blocked by Bedrock's content filters ({Reason}).")]
        public static partial void ImagesFiltered(ILogger logger, string provider, int missing, int asked, string reason);
    }
}
