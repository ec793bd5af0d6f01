"""The trading engine: signals, rules, money, orders and positions.

Never imports aiogram; talks to Bybit only through ``trader.exchange``.
"""
