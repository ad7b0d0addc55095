--[[
BridgeStatus: what the connection is doing, for the Plug-in Manager section and
the "show status" menu (pure data, no SDK). The connection writes it; the UI
only reads it.

    state          'disconnected' | 'connecting' | 'connected' | 'reconnecting' | 'unreachable'
                   (unreachable: MAX_RECONNECT_ATTEMPTS failures in a row; it still retries)
    stayingDisconnected  true when init() did not connect because of the Stay disconnected switch
    clientId       the bridge's id for this client while connected
    serverUrl      the gateway's base URL
    connectedAt, lastMessageAt, lastPongAt   LrDate times (seconds)
    lastError      why the last attempt failed
    attempts       failed attempts in a row; retryAt: when the next one starts (LrDate time)
    lastBatch, more   messages in the last poll answer, and whether the bridge holds more
    lastPollAt     when the last poll answer came
    cuts           polls cut or timed out on the way (each polled again at once)
    received, sent, dropped   message counts since Lightroom started
    redelivered    messages delivered again after a lost poll answer (processed once)
    launchState    'starting' | 'started' | 'failed' when the plug-in started the bridge (Launcher.lua)
    launchMessage  what the last start attempt said
    transport      'longpoll' | 'lrsocket': how messages arrive now (SocketPush.lua)
    transportReason  why: the setting, the push in use, or why it fell back to long-poll
    pushBinds, pushFallbacks, pushStale   LrSocket binds, fall-backs, stale callbacks ignored
]]
return {
	state = 'disconnected',
	received = 0,
	sent = 0,
	dropped = 0,
	redelivered = 0,
	attempts = 0,
}
