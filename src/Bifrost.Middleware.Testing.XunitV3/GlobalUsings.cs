global using Bifrost.Middleware.OpenAI;
global using Bifrost.Middleware.Jobs;
global using Bifrost.Middleware.Providers;
