var builder = WebApplication.CreateBuilder(args);
builder.Services.AddBifrost(builder.Configuration.GetSection("Bifrost"));

var app = builder.Build();
app.MapBifrost("/openai");
app.Run();

public partial class Program;
