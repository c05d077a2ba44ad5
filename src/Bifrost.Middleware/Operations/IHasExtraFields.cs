namespace Bifrost.Middleware.Operations;

/// <summary>An answer (or stream chunk) that carries <c>extra_fields</c>: the attempt loop fills them without a per-operation accessor.</summary>
internal interface IHasExtraFields
{
    /// <summary>The gateway's metadata.</summary>
    BifrostExtraFields? ExtraFields { get; set; }
}

/// <summary>An answer (or stream chunk) with an id and token usage, read without per-operation accessors.</summary>
internal interface IOperationAnswer : IHasExtraFields
{
    /// <summary>The answer's id (a batch line's <c>request_id</c>).</summary>
    string? Id { get; }

    /// <summary>The tokens it reports, for metrics (null when it reports none).</summary>
    TokenCounts? Tokens { get; }
}

/// <summary>A request that may ask for a stream.</summary>
internal interface IStreamableRequest
{
    /// <summary>Whether it asks for a stream.</summary>
    bool? Stream { get; }

    /// <summary>Clears its stream settings (batch lines never stream).</summary>
    void ClearStream();
}
