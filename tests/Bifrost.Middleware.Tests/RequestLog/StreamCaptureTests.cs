using System.Text.Json;
using Bifrost.Middleware.Operations;

namespace Bifrost.Middleware.Tests.RequestLog;

/// <summary>
/// The stream captures of the operations without a chat assembly: the Responses API keeps its final <c>response</c>
/// (or, cut before it, the events), text completions fall back to a bounded JSON array of chunks; both marked.
/// </summary>
public sealed class StreamCaptureTests
{
    private static ResponsesStreamEvent Event(string type, string json)
    {
        using var document = JsonDocument.Parse(json);
        return new ResponsesStreamEvent(type, document.RootElement.Clone());
    }

    [Fact]
    public void A_responses_stream_is_captured_as_its_final_response_or_cut_before_it_as_its_events()
    {
        var whole = InferenceOperations.Responses.NewStreamCapture!(65_536);
        whole.Add(Event("response.created", """{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"""));
        whole.Add(Event("response.output_text.delta", """{"type":"response.output_text.delta","delta":"Hel"}"""));
        whole.Add(Event("response.output_text.delta", """{"type":"response.output_text.delta","delta":"lo"}"""));
        whole.Add(Event("response.completed", """{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"Hello"}]}]}}"""));
        using (var json = JsonDocument.Parse(whole.ToJson(complete: true)))
        {
            Assert.Equal("resp_1", json.RootElement.GetProperty("id").GetString());
            Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
            Assert.Equal("Hello", json.RootElement.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
            Assert.True(json.RootElement.GetProperty("bifrost_capture").GetProperty("complete").GetBoolean());
            Assert.Equal(4, json.RootElement.GetProperty("bifrost_capture").GetProperty("chunks").GetInt32());
        }

        var cut = InferenceOperations.Responses.NewStreamCapture!(65_536);
        cut.Add(Event("response.created", """{"type":"response.created","response":{"id":"resp_2","status":"in_progress"}}"""));
        cut.Add(Event("response.output_text.delta", """{"type":"response.output_text.delta","delta":"Hel"}"""));
        using var events = JsonDocument.Parse(cut.ToJson(complete: false));
        Assert.Equal(3, events.RootElement.GetArrayLength()); // two events and the marker
        Assert.Equal("Hel", events.RootElement[1].GetProperty("delta").GetString());
        Assert.False(events.RootElement[2].GetProperty("bifrost_capture").GetProperty("complete").GetBoolean());
    }

    [Fact]
    public void Text_completion_streams_fall_back_to_a_bounded_array_of_chunks()
    {
        static TextCompletionResponse Chunk(string text) => new() { Id = "cmpl-1", Model = "m", Choices = [new TextChoice { Index = 0, Text = text }] };

        var capture = InferenceOperations.TextCompletion.NewStreamCapture!(65_536);
        capture.Add(Chunk("one "));
        capture.Add(Chunk("two"));
        using (var json = JsonDocument.Parse(capture.ToJson(complete: true)))
        {
            Assert.Equal(3, json.RootElement.GetArrayLength());
            Assert.Equal("one ", json.RootElement[0].GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal("two", json.RootElement[1].GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.False(json.RootElement[2].GetProperty("bifrost_capture").GetProperty("truncated").GetBoolean());
        }

        var first = JsonSerializer.Serialize(Chunk("one "), Bifrost.Middleware.Serialization.BifrostJson.Context.TextCompletionResponse).Length;
        var capped = InferenceOperations.TextCompletion.NewStreamCapture!(first + 5); // room for the first chunk only
        capped.Add(Chunk("one "));
        capped.Add(Chunk("two"));
        capped.Add(Chunk("x")); // nothing after a chunk that did not fit, even a small one
        using var cut = JsonDocument.Parse(capped.ToJson(complete: true));
        Assert.Equal(2, cut.RootElement.GetArrayLength());
        Assert.Equal("one ", cut.RootElement[0].GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.True(cut.RootElement[1].GetProperty("bifrost_capture").GetProperty("truncated").GetBoolean());
        Assert.Equal(3, cut.RootElement[1].GetProperty("bifrost_capture").GetProperty("chunks").GetInt32());
    }
}
