namespace Bifrost.Middleware.Tokenization;

/// <summary>The tiktoken encodings the local token counter knows.</summary>
internal enum TokenEncoding
{
    /// <summary><c>o200k_base</c>: gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o-series, gpt-oss (and the fallback for unknown models).</summary>
    O200kBase,

    /// <summary><c>cl100k_base</c>: gpt-4, gpt-3.5-turbo, text-embedding-ada-002, text-embedding-3-*.</summary>
    Cl100kBase,
}

/// <summary>The result of a local token count.</summary>
/// <param name="Tokens">The number of input tokens.</param>
/// <param name="Encoding">The encoding used: <c>o200k_base</c> or <c>cl100k_base</c>.</param>
/// <param name="Exact">
/// <see langword="true"/> when the count follows OpenAI's published counting rules for a known model family;
/// <see langword="false"/> when any estimate was involved (unknown model family, image of unknown size, image
/// pricing not documented for the model, tool calls and tool results, tool schemas or content parts the
/// published rules do not cover).
/// </param>
internal readonly record struct TokenCount(int Tokens, string Encoding, bool Exact);
