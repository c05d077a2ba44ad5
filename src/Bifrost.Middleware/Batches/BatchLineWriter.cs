using System.Security.Cryptography;
using System.Text;

namespace Bifrost.Middleware.Batches;

/// <summary>
/// The batch output line format (OpenAI's), in one place for the gateway's own batch runner and for native provider batches
/// whose results an adapter translates: <c>{"id","custom_id","response":{"status_code","request_id","body"},"error":null}</c>
/// for an answered line, <c>{"id","custom_id","response":null,"error":{"code","message"}}</c> for a line that never ran.
/// </summary>
internal static class BatchLineWriter
{
    /// <summary><c>{"id","custom_id","response":{"status_code","request_id","body"},"error":null}</c>; <paramref name="writeBody"/> writes the body value.</summary>
    public static byte[] ResponseLine(string batchId, string customId, int statusCode, string? requestId, Action<Utf8JsonWriter> writeBody) =>
        Line(batchId, customId, 1024, (statusCode, requestId, writeBody), static (writer, line) =>
        {
            writer.WriteStartObject("response");
            writer.WriteNumber("status_code", line.statusCode);
            if (line.requestId is null)
            {
                writer.WriteNull("request_id");
            }
            else
            {
                writer.WriteString("request_id", line.requestId);
            }

            writer.WritePropertyName("body");
            line.writeBody(writer);
            writer.WriteEndObject();
            writer.WriteNull("error");
        });

    /// <summary>
    /// A line answered with an error status: <see cref="ResponseLine"/> whose body is the error envelope
    /// <c>{"error":{"message","type","param":null,"code"}}</c> (native batches translating a provider's failed request).
    /// </summary>
    public static byte[] ErrorResponseLine(string batchId, string customId, int status, string message, string type, string? code) =>
        ResponseLine(batchId, customId, status, null, writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartObject("error");
            writer.WriteString("message", message);
            writer.WriteString("type", type);
            writer.WriteNull("param");
            if (code is null)
            {
                writer.WriteNull("code");
            }
            else
            {
                writer.WriteString("code", code);
            }

            writer.WriteEndObject();
            writer.WriteEndObject();
        });

    /// <summary><c>{"id","custom_id","response":null,"error":{"code","message"}}</c>.</summary>
    public static byte[] ErrorLine(string batchId, string customId, string code, string message) =>
        Line(batchId, customId, 256, (code, message), static (writer, line) =>
        {
            writer.WriteNull("response");
            writer.WriteStartObject("error");
            writer.WriteString("code", line.code);
            writer.WriteString("message", line.message);
            writer.WriteEndObject();
        });

    /// <summary>A line that was not run because its batch was cancelled (<c>batch_cancelled</c>).</summary>
    public static byte[] CancelledLine(string batchId, string customId) =>
        ErrorLine(batchId, customId, "batch_cancelled", "The batch was cancelled before this request ran.");

    /// <summary>The line's id: stable per batch and <c>custom_id</c>, so a re-run writes the same id.</summary>
    public static string LineId(string batchId, string customId)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(batchId + "\n" + customId), hash);
        return "batch_req_" + Convert.ToHexStringLower(hash[..12]);
    }

    /// <summary>One line: <c>{"id","custom_id", ...}</c> with the rest written by <paramref name="writeRest"/>.</summary>
    private static byte[] Line<TState>(string batchId, string customId, int capacity, TState state, Action<Utf8JsonWriter, TState> writeRest)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(capacity);
        using (var writer = new Utf8JsonWriter(buffer, BifrostJson.WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("id", LineId(batchId, customId));
            writer.WriteString("custom_id", customId);
            writeRest(writer, state);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}
