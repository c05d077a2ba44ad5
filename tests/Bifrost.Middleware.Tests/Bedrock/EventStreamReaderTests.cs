using System.Text;
using Bifrost.Middleware.Providers.Bedrock;

namespace Bifrost.Middleware.Tests.Bedrock;

/// <summary>The AWS event-stream frame decoder: known-answer frames, checksums, limits, frames split across reads.</summary>
public sealed class EventStreamReaderTests
{
    // Known-answer frames of the event-stream encoding (https://hexdocs.pm/event_stream/EventStream.html doctests):
    // payload {"foo": "bar"} without headers, and with the string header content-type: application/json.
    private static readonly byte[] NoHeaders = Hex("0000001E00000000BAF2F68A" + Ascii("{\"foo\": \"bar\"}") + "AE7258E4");
    private static readonly byte[] OneHeader = Hex("0000003E00000020405DF946" + "0C" + Ascii("content-type") + "070010" + Ascii("application/json") + Ascii("{\"foo\": \"bar\"}") + "6FA2BF3B");

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Known_answer_frames_decode_with_their_headers_and_payload()
    {
        var reader = new EventStreamReader(new MemoryStream([.. NoHeaders, .. OneHeader]));

        var first = await reader.ReadAsync(Ct);
        var second = await reader.ReadAsync(Ct);
        var end = await reader.ReadAsync(Ct);

        Assert.Empty(first!.Headers);
        Assert.Equal("{\"foo\": \"bar\"}", Encoding.UTF8.GetString(first.Payload.Span));
        Assert.Equal("application/json", second!.Header("content-type"));
        Assert.Equal("{\"foo\": \"bar\"}", Encoding.UTF8.GetString(second.Payload.Span));
        Assert.Null(end);
    }

    [Fact]
    public void The_test_encoder_writes_the_known_answer_frames()
    {
        Assert.Equal(NoHeaders, FakeBedrockUpstream.Frame([], Encoding.UTF8.GetBytes("{\"foo\": \"bar\"}")));
        Assert.Equal(OneHeader, FakeBedrockUpstream.Frame([("content-type", "application/json")], Encoding.UTF8.GetBytes("{\"foo\": \"bar\"}")));
    }

    [Fact]
    public async Task Frames_split_into_one_byte_reads_decode_the_same()
    {
        var frames = new[]
        {
            FakeBedrockUpstream.Event("messageStart", new() { ["role"] = "assistant" }),
            FakeBedrockUpstream.Exception("throttlingException", "slow down"),
        };
        var reader = new EventStreamReader(new TrickleStream(frames.SelectMany(f => f).ToArray()));

        var first = await reader.ReadAsync(Ct);
        var second = await reader.ReadAsync(Ct);

        Assert.Equal("messageStart", first!.Header(":event-type"));
        Assert.Equal("event", first.Header(":message-type"));
        Assert.Equal("{\"role\":\"assistant\"}", Encoding.UTF8.GetString(first.Payload.Span));
        Assert.Equal("throttlingException", second!.Header(":exception-type"));
        Assert.Null(await reader.ReadAsync(Ct));
    }

    [Theory]
    [InlineData(8)] // prelude CRC
    [InlineData(50)] // payload (message CRC)
    [InlineData(61)] // message CRC itself
    public async Task A_changed_byte_fails_a_checksum(int index)
    {
        var frame = (byte[])OneHeader.Clone();
        frame[index] ^= 0x01;

        var error = await Assert.ThrowsAsync<BifrostException>(() => new EventStreamReader(new MemoryStream(frame)).ReadAsync(Ct).AsTask());

        Assert.Equal(502, error.StatusCode);
        Assert.Equal("invalid_provider_response", error.Error.Error.Code);
        Assert.Contains("checksum", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(12)]
    [InlineData(40)]
    public async Task A_body_ending_inside_a_frame_is_an_error(int length)
    {
        var error = await Assert.ThrowsAsync<BifrostException>(() => new EventStreamReader(new MemoryStream(OneHeader[..length])).ReadAsync(Ct).AsTask());

        Assert.Equal(502, error.StatusCode);
        Assert.Contains("ended inside", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_frame_over_the_limit_is_refused_before_it_is_read()
    {
        var prelude = new byte[12];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(prelude, EventStreamReader.MaxFrameBytes + 1u);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(prelude.AsSpan(8), System.IO.Hashing.Crc32.HashToUInt32(prelude.AsSpan(0, 8)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => new EventStreamReader(new MemoryStream(prelude)).ReadAsync(Ct).AsTask());

        Assert.Equal(502, error.StatusCode);
        Assert.Contains("at most", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Headers_longer_than_the_frame_are_refused()
    {
        var frame = FakeBedrockUpstream.Frame([], new byte[4]);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), 100);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(8), System.IO.Hashing.Crc32.HashToUInt32(frame.AsSpan(0, 8)));

        var error = await Assert.ThrowsAsync<BifrostException>(() => new EventStreamReader(new MemoryStream(frame)).ReadAsync(Ct).AsTask());

        Assert.Equal(502, error.StatusCode);
    }

    private static string Ascii(string text) => Convert.ToHexString(Encoding.ASCII.GetBytes(text));

    private static byte[] Hex(string hex) => Convert.FromHexString(hex);

    /// <summary>A stream that returns one byte per read.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(1, count));
    }
}
