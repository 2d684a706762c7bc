package org.elasticsearch.plugins;

import org.elasticsearch.Version;
import org.elasticsearch.common.settings.Settings;

import java.util.ArrayList;
import java.util.List;

/**
 * A {@link PluginsService} whose plugins are classes already on the application class path,
 * instead of bundles unpacked under {@code <path.home>/plugins} and {@code modules}.
 *
 * <p>Lives in {@code org.elasticsearch.plugins} because {@code loadPlugin}, {@code loadExtensions}
 * and {@code LoadedPlugin} are package-private. Used by inferwatch's local stack only.
 */
public final class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> classpathPlugins;

    public ClasspathPluginsService(Settings settings, PluginsLoader loader, List<Class<? extends Plugin>> pluginClasses) {
        // no plugins directory: the loader holds no bundles, the base class loads nothing itself
        super(settings, null, loader);
        ClassLoader classLoader = ClasspathPluginsService.class.getClassLoader();
        List<LoadedPlugin> loaded = new ArrayList<>();
        for (Class<? extends Plugin> pluginClass : pluginClasses) {
            PluginDescriptor descriptor = new PluginDescriptor(
                pluginClass.getSimpleName(),            // name
                "loaded from the class path",           // description
                Version.CURRENT.toString(),             // plugin version
                Version.CURRENT.toString(),             // elasticsearch version
                Runtime.version().feature() + "",       // java version
                pluginClass.getName(),                  // class name
                null,                                   // module name (not modular)
                List.of(),                              // extended plugins
                false,                                  // has native controller
                false,                                  // licensed
                false,                                  // is modular
                false,                                  // is stable
                PluginDescriptor.DeploymentTarget.ALL
            );
            Plugin plugin = loadPlugin(pluginClass, settings, null);
            loaded.add(new LoadedPlugin(descriptor, plugin, classLoader));
        }
        loadExtensions(loaded);
        this.classpathPlugins = List.copyOf(loaded);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return classpathPlugins;
    }
}
