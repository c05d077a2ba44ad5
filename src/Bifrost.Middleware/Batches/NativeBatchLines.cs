using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Serialization.Metadata;

namespace Bifrost.Middleware.Batches;

/// <summary>One line of an OpenAI batch input whose body is a chat completion request (the line readers of the native batch adapters are in this file).</summary>
/// <param name="Number">The line's 1-based number in the input (blank lines counted), for error messages.</param>
/// <param name="CustomId">The caller's <c>custom_id</c>.</param>
/// <param name="Chat">The line's body.</param>
internal readonly record struct ChatBatchLine(int Number, string CustomId, ChatCompletionRequest Chat);

/// <summary>Reads an OpenAI batch input of chat completion lines, for the native batch adapters that translate each line.</summary>
internal static class ChatBatchInput
{
    /// <summary>The lines of <paramref name="input"/> (left open), blank lines skipped; a line that is not a chat line is a 400 <c>invalid_batch_line</c>.</summary>
    public static async IAsyncEnumerable<ChatBatchLine> ReadAsync(Stream input, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(input, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536, leaveOpen: true);
        string? line;
        var number = 0;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            string customId;
            ChatCompletionRequest chat;
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                customId = root.GetProperty("custom_id").GetString() ?? throw new JsonException("custom_id is null");
                chat = root.GetProperty("body").Deserialize(BifrostJson.Context.ChatCompletionRequest) ?? throw new JsonException("body is null");
            }
            catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                throw BifrostErrors.InvalidRequest("invalid_batch_line", $"Batch input line {number} is not a chat completion request line: {ex.Message}");
            }

            yield return new ChatBatchLine(number, customId, chat);
        }
    }
}

/// <summary>Reads a provider's batch results file (JSON Lines), for the native batch adapters that translate each result.</summary>
internal static class ProviderBatchResults
{
    /// <summary>
    /// The results of <paramref name="results"/>, blank lines skipped; a line that is not JSON of <typeparamref name="T"/> is
    /// reported to <paramref name="unreadable"/> and skipped (the batch's counts still say it was there).
    /// </summary>
    public static async IAsyncEnumerable<T?> ReadAsync<T>(Stream results, JsonTypeInfo<T> typeInfo, Action<JsonException> unreadable, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(results, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 65536);
        string? line;
        while ((line = await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false)) is not null)
        {
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            T? result;
            try
            {
                result = JsonSerializer.Deserialize(line, typeInfo);
            }
            catch (JsonException ex)
            {
                unreadable(ex);
                continue;
            }

            yield return result;
        }
    }
}

/// <summary>
/// The two synthetic result files a native batch exposes, <c>{batch id}:output</c> and <c>{batch id}:errors</c>, each in
/// OpenAI's batch output format (the adapters of Anthropic, Gemini, Vertex, Bedrock and Cohere).
/// </summary>
internal static class NativeBatchFiles
{
    public const string OutputSuffix = ":output";
    public const string ErrorsSuffix = ":errors";

    /// <summary>The batch a result file belongs to and whether it is the errors file; 404 for any other file id.</summary>
    /// <param name="context">The call (its provider name is in the error).</param>
    /// <param name="fileId">The file id asked for.</param>
    /// <param name="results">What the results are, for the error (e.g. <c>Gemini batch results</c>).</param>
    /// <param name="idName">What the id before the suffix is, for the error (e.g. <c>batch id</c>).</param>
    public static (string BatchId, bool Errors) Parse(ProviderContext context, string fileId, string results, string idName)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentException.ThrowIfNullOrEmpty(fileId);
        return fileId.EndsWith(OutputSuffix, StringComparison.Ordinal) ? (fileId[..^OutputSuffix.Length], false)
            : fileId.EndsWith(ErrorsSuffix, StringComparison.Ordinal) ? (fileId[..^ErrorsSuffix.Length], true)
            : throw BifrostErrors.NotFound("file_not_found", $"Provider '{context.ProviderName}' has no file '{fileId}': {results} are '<{idName}>{OutputSuffix}' or '<{idName}>{ErrorsSuffix}'.", "file_id");
    }
}

/// <summary>Temporary files for spooling (uploads, batch inputs and results): asynchronous I/O, deleted when closed.</summary>
internal static class TempFiles
{
    public static FileStream Create() =>
        new(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.Asynchronous | FileOptions.DeleteOnClose);
}
