"""A demo district for `hotline demo-data`: departments, categories, routing rules, users,
and N tickets spread over the past six months, in every state of the default workflow.

The directory (a few hundred rows) goes through hotline.directory. The tickets do not go
through the ORM or the gateway: each ticket's life is played in plain Python, mirroring
the workflow's effects (hotline.workflow.rules), the clocks (hotline.deadlines.sla) and the
scheduler's escalation ladder (hotline.scheduler), and written in bulk with SQLAlchemy
Core, ids assigned here so that child rows need no round trip. Every history is a path
that workflows/default.yaml allows, and the ticket's columns, assignments, approvals,
callbacks, escalations, supervision orders and notices are what the gateway and the
scheduler would have left behind, so the engine carries on from any of them. (No outbox
messages are written: a demo district has no other systems to tell.)

The data is reproducible for a seed; only the printed API tokens are random.
"""

import random
import time
from bisect import bisect_left, insort
from collections import Counter, deque
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from json import dumps
from queue import Queue
from threading import Thread
from typing import Any, TextIO

from sqlalchemy import JSON, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from hotline import directory
from hotline.deadlines.calendar import LOCAL_TZ, WorkCalendar
from hotline.deadlines.sla import LADDER, LADDER_KINDS
from hotline.errors import Conflict, Invalid
from hotline.evaluation.ratings import BAD_RATINGS, RATING_LABELS, app_secret, new_link_token
from hotline.indicators import totals
from hotline.models import (
    Approval,
    Assignment,
    Callback,
    Department,
    Escalation,
    Message,
    Notification,
    RatingInvitation,
    Rectification,
    SupervisionOrder,
    Ticket,
    TicketCounter,
    TicketEvent,
    User,
)
from hotline.security import hash_password, token_digest
from hotline.workflow.definition import Limit, Workflow

DEMO_PASSWORD = "hotline-demo"
WORKFLOW = "default"
# The users whose API tokens the loader prints.
TOKEN_USERS = ("admin", "agent1", "supervisor1", "cgj.handler")

# --- the district ---------------------------------------------------------------------------

CITY = "江州市"
DISTRICT = "青山区"

# Functional departments: code, official name, short name.
DEPARTMENTS = [
    ("zjj", "青山区住房和城乡建设局", "区住建局"),
    ("cgj", "青山区城市管理执法局", "区城管局"),
    ("scjg", "青山区市场监督管理局", "区市场监管局"),
    ("sthj", "江州市生态环境局青山分局", "生态环境分局"),
    ("rsj", "青山区人力资源和社会保障局", "区人社局"),
    ("mzj", "青山区民政局", "区民政局"),
    ("jyj", "青山区教育局", "区教育局"),
    ("wjw", "青山区卫生健康委员会", "区卫健委"),
    ("ybj", "青山区医疗保障局", "区医保局"),
    ("swj", "青山区水务局", "区水务局"),
    ("gsgs", "江州青山供水有限公司", "供水公司"),
    ("grb", "青山区供热管理办公室", "区供热办"),
    ("rqgs", "江州青山燃气有限公司", "燃气公司"),
    ("jtj", "青山区交通运输局", "区交通运输局"),
    ("jjdd", "江州市公安局交通管理局青山大队", "交警青山大队"),
    ("zrzy", "江州市自然资源和规划局青山分局", "自然资源分局"),
    ("yjj", "青山区应急管理局", "区应急管理局"),
    ("wlj", "青山区文化和旅游局", "区文旅局"),
    ("spj", "青山区行政审批局", "区行政审批局"),
]

# Streets (街道): office code, name, centre (lat lng), roads; then, indented, the communities.
STREETS_TEXT = """
bjjd 滨江街道 30.6021 114.3123 滨江大道 沿江路 江汉路
  江畔社区 滨江花园社区 临江社区 码头社区 观澜社区 渔湾社区
qsjd 青山街道 30.6312 114.3854 青山路 和平大道 建设二路
  青山社区 红钢城社区 钢花社区 建设社区 工人村社区 冶金社区 和平社区
tyjd 桃源街道 30.6145 114.4012 桃源路 杏林大道 花溪路
  桃源社区 桃花岛社区 杏林社区 梅园社区 柳岸社区
chjd 翠湖街道 30.5893 114.3721 翠湖路 湖光大道 碧水街
  翠湖社区 湖光社区 荷塘社区 碧水社区 湖滨社区 南湖社区 映月社区 听涛社区
lqjd 龙泉街道 30.6478 114.3402 龙泉大道 盘龙路 泉水巷
  龙泉社区 龙井社区 泉水社区 盘龙社区 卧龙社区
jsjd 金沙街道 30.5764 114.3355 金沙路 金桥大道 沙湖西路
  金沙社区 银滩社区 金桥社区 沙湖社区 金色家园社区 财富社区
wjjd 望江街道 30.6620 114.4103 望江路 新港大道 远帆街
  望江社区 江景社区 远帆社区 新港社区
bljd 白鹭街道 30.5602 114.4187 白鹭大道 长堤路 湿地公园路
  白鹭社区 鹭岛社区 芦苇社区 湿地社区 秋水社区 长堤社区
dhjd 东湖街道 30.5548 114.3712 东湖路 梨园大道 磨山路
  东湖社区 东亭社区 珞珈社区 梨园社区 水果湖社区 磨山社区 落雁社区
"""

ESTATE_SUFFIXES = ["花园", "小区", "家园", "新村", "公寓", "雅苑"]

# The category tree (问题分类), indented two spaces a level: code, name, default department.
# A leaf adds its weights "problems/consultations" and optional flags (outage, danger,
# heating, summer); under it, "P title｜detail" is a problem citizens report and
# "Q title｜detail" a question they ask.
CATEGORY_TEXT = """
CX 城乡建设 zjj
  CX01 物业管理 zjj
    CX0101 物业服务 zjj 8/2
      P 小区物业服务不到位｜小区物业长期不打扫楼道，垃圾堆放多日无人清理，绿化无人养护，物业费却照收不误
      P 物业拒不维修单元门禁｜单元门禁损坏两个多月，多次找物业报修均以没有维修资金为由推诿
      Q 咨询更换物业公司的程序｜小区业主想更换物业公司，需要经过哪些程序，业主大会如何召开
    CX0102 物业收费 zjj 3/2
      P 物业擅自上涨物业费｜小区物业未经业主大会同意，自行将物业费从每平方米1.2元上调至1.8元
      P 物业以停水停电催缴物业费｜物业公司以欠缴物业费为由，对部分住户限制用水用电
      Q 咨询物业费收费标准｜本区普通住宅物业服务收费的政府指导价标准是多少
    CX0103 电梯故障 scjg 4/0 danger
      P 小区电梯频繁故障｜小区电梯本月已停运四次，其中一次困人近半小时，居民担心乘梯安全
      P 电梯检验合格证过期｜电梯轿厢内张贴的检验合格证已过期半年，物业未组织定期检验
    CX0104 维修资金 zjj 1/2
      P 申请使用维修资金迟迟未批｜楼顶漏水需要维修，申请动用住宅专项维修资金已两个月仍未审批
      Q 咨询住宅专项维修资金使用流程｜屋面防水维修申请使用住宅专项维修资金需要什么条件和流程
  CX02 房屋管理 zjj
    CX0201 房屋质量 zjj 2/0 summer
      P 新房墙体开裂渗水｜去年交付的新房多处墙体开裂、窗边渗水，开发商一再拖延维修
      P 顶楼住户房屋漏水｜连续降雨后顶楼卧室天花板漏水严重，墙皮大面积脱落
    CX0202 商品房交付 zjj 2/1
      P 楼盘逾期交房｜所购楼盘合同约定6月底交房，至今未交付，开发商未给出明确时间
      Q 咨询商品房网签备案查询｜如何查询所购商品房的网签备案信息
    CX0203 老旧小区改造 zjj 2/2
      P 老旧小区改造施工影响出行｜小区改造施工挖开道路后长期未恢复，老人出行十分困难
      Q 咨询老旧小区改造和加装电梯｜本小区是否纳入今年老旧小区改造计划，加装电梯如何申请
    CX0204 房屋租赁 zjj 1/2
      P 中介公司克扣租房押金｜租房合同到期退租，中介公司以各种理由拒不退还押金
      Q 咨询公租房申请条件｜本区公共租赁住房的申请条件和所需材料有哪些
  CX03 违法建设 cgj
    CX0301 违章搭建 cgj 4/0
      P 楼顶违章搭建彩钢房｜顶楼住户在楼顶平台搭建彩钢房，影响楼栋防水和消防安全
      P 一楼住户私自扩建院墙｜一楼住户私自扩建院墙并搭建雨棚，侵占小区公共绿地
    CX0302 占用公共空间 cgj 2/0
      P 楼道堆放杂物堵塞通道｜楼道内长期堆放杂物并停放电动车，堵塞消防通道
      P 私设地锁占用公共车位｜小区内有人私自安装地锁，长期占用公共停车位
CG 城市管理 cgj
  CG01 市容环卫 cgj
    CG0101 占道经营 cgj 4/0 summer
      P 路边摊贩占道经营｜路口早晚有大量流动摊贩占道经营，造成交通拥堵，收摊后垃圾遍地
      P 门店出店经营占用人行道｜沿街门店将货物摆到人行道上经营，行人只能走机动车道
    CG0102 垃圾清运 cgj 4/1
      P 垃圾桶满溢无人清运｜小区门口垃圾桶满溢，连续三天无人清运，异味严重
      P 建筑垃圾随意倾倒｜路边空地上被人倾倒大量装修垃圾，已经堆成小山
      Q 咨询装修垃圾清运办法｜家庭装修产生的建筑垃圾如何申请清运，收费标准是多少
    CG0103 垃圾分类 cgj 1/2
      P 小区未落实垃圾分类｜小区的垃圾分类桶形同虚设，清运时混装混运
      Q 咨询垃圾分类投放规定｜厨余垃圾和其他垃圾如何区分，定时定点投放的时间是什么
    CG0104 户外广告 cgj 1/0 danger
      P 户外广告牌松动存在隐患｜临街楼顶广告牌支架锈蚀松动，大风天摇晃，存在坠落隐患
  CG02 市政设施 cgj
    CG0201 道路破损 cgj 3/0
      P 路面坑洼积水｜路面出现多处坑洼，下雨后积水严重，已有电动车在此摔倒
      P 人行道地砖松动破损｜人行道地砖大面积松动翘起，雨天一踩就溅水，老人容易绊倒
    CG0202 路灯故障 cgj 2/0
      P 路灯不亮｜道路沿线一排路灯已经一周不亮，夜间行走很不安全
    CG0203 井盖缺失 cgj 1/0 danger
      P 窨井盖缺失｜人行道上一处窨井盖缺失，仅用树枝遮挡，极易发生行人跌落
    CG0204 园林绿化 cgj 2/1
      P 行道树枝叶遮挡信号灯｜行道树枝叶过密，遮挡交通信号灯和低层住户采光，需要修剪
      P 公共绿地被毁种菜｜小区公共绿地被部分居民开垦种菜并使用粪肥，气味难闻
      Q 咨询树木修剪审批｜小区内一棵大树影响住户采光，修剪或移植需要办理什么手续
HB 环境保护 sthj
  HB01 噪声污染 sthj
    HB0101 施工噪声 cgj 5/0 summer
      P 夜间施工噪声扰民｜工地每天夜间十一点后仍在施工，机械噪声很大，严重影响休息
      P 渣土车夜间作业扰民｜附近工地渣土车整夜进出，鸣笛和装卸声不断
    HB0102 商业噪声 sthj 2/0 summer
      P 商铺音响噪声扰民｜沿街商铺整天用大功率音响促销，噪声很大
      P 烧烤店深夜噪声扰民｜烧烤店营业到凌晨两三点，顾客喧哗，影响居民休息
    HB0103 社会生活噪声 sthj 2/0 summer
      P 广场舞音响声音过大｜小区广场每晚跳广场舞，音响声音过大，持续到晚上十点以后
  HB02 大气污染 sthj
    HB0201 餐饮油烟 sthj 3/0
      P 餐馆油烟直排扰民｜楼下餐馆未安装油烟净化设备，油烟直排进入居民家中
    HB0202 工业废气 sthj 1/0
      P 工厂夜间排放刺鼻气体｜附近工厂夜间排放带有刺鼻气味的废气，周边居民不敢开窗
    HB0203 露天焚烧 cgj 1/0
      P 有人露天焚烧垃圾｜空地上有人露天焚烧垃圾和废旧轮胎，浓烟很大
  HB03 水体污染 swj 1/0 summer
    P 港渠水体发黑发臭｜港渠水体发黑发臭，有排污口向渠内排放污水
SC 市场监管 scjg
  SC01 食品安全 scjg
    SC0101 餐饮卫生 scjg 3/0
      P 餐馆卫生条件差｜在餐馆就餐后出现腹泻呕吐，怀疑食材不新鲜，后厨卫生条件差
      P 外卖餐品吃出异物｜通过外卖平台点餐，在饭菜中吃出异物，商家拒绝处理
    SC0102 过期食品 scjg 2/0
      P 超市销售过期食品｜在超市购买的牛奶已过保质期，超市仍在货架上销售
    SC0103 无证经营 scjg 1/0
      P 无证小作坊加工食品｜居民楼内有人开设无证小作坊加工糕点对外销售，卫生条件堪忧
  SC02 消费维权 scjg
    SC0201 预付卡退费 scjg 4/1
      P 健身房关门预付卡无法退费｜办理的健身卡还有大半年未使用，健身房突然关门，无法联系商家退费
      P 培训机构拒不退还预付费｜在培训机构预交一年课时费，机构经营异常，拒不退还剩余费用
      Q 咨询预付卡纠纷维权途径｜商家停业后预付卡余额如何追讨
    SC0202 商品质量 scjg 2/0 summer
      P 购买家电出现质量问题｜新买的空调使用不到一个月就不制冷，商家拒绝退换
    SC0203 价格欺诈 scjg 2/0
      P 商家虚构原价促销｜商场促销先涨价后打折，标示的原价与实际不符
LD 劳动社保 rsj
  LD01 劳动关系 rsj
    LD0101 欠薪 rsj 5/1
      P 公司拖欠工资｜所在公司已拖欠员工三个月工资，涉及二十余人，老板拒不见面
      P 工地拖欠农民工工资｜在工地务工，项目完工后包工头拖欠工资至今未结清
      Q 咨询欠薪如何申请劳动仲裁｜单位拖欠工资如何申请劳动仲裁，需要准备哪些材料
    LD0102 劳动合同 rsj 2/2
      P 单位不签劳动合同｜入职半年，单位一直未签订劳动合同，也未缴纳社会保险
      Q 咨询解除劳动合同经济补偿｜单位提出解除劳动合同时，经济补偿金如何计算
  LD02 社会保险 rsj
    LD0201 社保缴费 rsj 1/5
      P 单位未足额缴纳社保｜单位按最低基数缴纳社保，与实际工资严重不符
      Q 咨询灵活就业人员社保缴费｜灵活就业人员如何参加养老保险，缴费基数如何选择
      Q 咨询社保关系转移接续｜从外地回本区工作，养老保险关系转移接续如何办理
    LD0202 养老金 rsj 0/3
      Q 咨询退休手续办理｜即将到达退休年龄，退休手续在哪里办理，需要哪些材料
      Q 咨询养老金调整到账时间｜今年基本养老金调整后何时到账
    LD0203 失业保险 rsj 0/2
      Q 咨询失业保险金申领｜失业后如何申领失业保险金，可以领取多长时间
  LD03 就业创业 rsj 0/2
    Q 咨询创业担保贷款｜个人创业担保贷款的申请条件和额度是多少
YL 医疗卫生 wjw
  YL01 医疗服务 wjw 2/2
    P 社区卫生服务中心服务态度差｜在社区卫生服务中心就诊时医生态度生硬，挂号排队时间过长
    Q 咨询家庭医生签约｜如何与社区卫生服务中心签约家庭医生
  YL02 疫苗接种 wjw 0/2
    Q 咨询儿童疫苗接种｜儿童接种疫苗如何预约，接种门诊在哪里
  YL03 医疗保障 ybj
    YL0301 医保报销 ybj 1/4
      P 医保报销款迟迟未到账｜提交异地就医报销材料已三个月，报销款仍未到账
      Q 咨询异地就医备案｜异地就医备案通过什么渠道办理，报销比例是多少
    YL0302 医保参保 ybj 0/3
      Q 咨询城乡居民医保缴费｜城乡居民医疗保险今年的缴费标准和截止时间
JY 教育 jyj
  JY01 入学政策 jyj 1/5 summer
    P 适龄儿童未被划片学校录取｜孩子户籍在学区范围内，却未被划片学校录取，被调剂到较远学校
    Q 咨询小学入学报名｜今年小学一年级入学报名时间、所需材料和学区划分
  JY02 校外培训 jyj 2/1
    P 培训机构违规开展学科培训｜有培训机构在居民楼内违规开展学科类培训
    Q 咨询校外培训机构资质查询｜如何查询校外培训机构是否取得办学许可
  JY03 学校管理 jyj 2/1
    P 学校门口接送车辆乱停｜学校上下学时段门口车辆乱停乱放，学生过马路很危险
    Q 咨询课后服务收费｜学校课后延时服务的收费标准是多少
MZ 民政服务 mzj
  MZ01 低保救助 mzj 1/3
    P 低保申请久拖未办｜家庭困难申请低保已两个多月，一直没有答复
    Q 咨询最低生活保障申请条件｜申请最低生活保障的条件和办理流程
  MZ02 养老服务 mzj 1/3
    P 养老院护理不到位｜老人入住的养老院护理不到位，老人身上出现压疮
    Q 咨询高龄津贴申领｜八十周岁以上老人高龄津贴如何申领
  MZ03 残疾人服务 mzj 0/1
    Q 咨询残疾人两项补贴｜困难残疾人生活补贴和重度残疾人护理补贴的申请条件
GS 供水 gsgs
  GS01 停水 gsgs 5/1 outage summer
    P 小区突然停水｜小区从今天早上开始突然停水，事先未见任何停水通知，居民生活受到影响
    P 高层住户水压不足｜高层住户白天水压不足，热水器无法正常点火
    Q 咨询计划停水恢复时间｜看到停水通知，具体什么时候恢复供水
  GS02 水质问题 gsgs 2/0
    P 自来水发黄有异味｜家中自来水发黄浑浊并有异味，不敢饮用
  GS03 水费 gsgs 1/2
    P 水费异常偏高｜本月水费比平时高出三倍，家中并未发现漏水
    Q 咨询阶梯水价标准｜居民生活用水阶梯水价如何计费
  GS04 供水管道漏水 gsgs 2/0 outage
    P 路边供水管道爆裂｜路边供水管道爆裂，大量自来水涌出路面
GR 供热 grb
  GR01 供暖不热 grb 6/0 heating outage
    P 暖气不热｜供暖开始后家中暖气一直不热，室温只有十四五度
    P 小区供暖温度不达标｜小区多户居民暖气温度不达标，老人孩子受冻
  GR02 供热收费 grb 1/2 heating
    P 供热公司多收取暖费｜供热公司将阁楼面积计入收费面积，多收取暖费
    Q 咨询供暖报停｜家中今年无人居住，如何办理供暖报停
  GR03 暖气漏水 grb 2/0 heating outage
    P 暖气管道漏水｜家中暖气管道接口漏水，已经渗到楼下住户
JT 交通出行 jtj
  JT01 公共交通 jtj
    JT0101 公交服务 jtj 2/2
      P 公交车到站不停｜公交车多次到站不停，候车乘客无法上车
      Q 咨询公交线路调整｜近期公交线路调整后的首末班时间
    JT0102 出租网约车 jtj 2/0
      P 出租车绕路拒不打表｜乘坐出租车时司机故意绕路并拒绝打表
  JT02 道路交通 jjdd
    JT0201 违章停车 jjdd 4/0
      P 车辆乱停堵塞道路｜道路两侧车辆长期乱停乱放，消防车和救护车无法通行
    JT0202 交通信号 jjdd 1/0
      P 红绿灯时长设置不合理｜路口直行绿灯时间太短，高峰期车辆排起长队
    JT0203 非机动车停放 cgj 1/0
      P 共享单车乱停放｜地铁站出口共享单车大量堆积，占用盲道和人行道
ZY 自然资源 zrzy
  ZY01 不动产登记 zrzy 1/3
    P 房产证迟迟办不下来｜交房已满三年，因开发商原因至今无法办理不动产权证
    Q 咨询不动产登记办理材料｜二手房过户办理不动产登记需要准备哪些材料
  ZY02 规划建设 zrzy 1/1
    P 新建高楼遮挡采光｜小区南侧新建高楼距离过近，严重遮挡低层住户采光
    Q 咨询地块规划公示｜周边地块的规划用途和规划公示在哪里查询
AQ 安全生产 yjj
  AQ01 安全隐患 yjj 2/0 danger
    P 违规存放液化气罐｜居民楼底商违规存放大量液化气罐，存在重大安全隐患
  AQ02 燃气安全 rqgs 2/1 danger outage
    P 楼道内有燃气味｜单元楼道内有明显燃气味，怀疑燃气管道泄漏
    Q 咨询燃气开户通气｜新房入住，燃气开户通气如何办理
  AQ03 消防通道 yjj 2/0
    P 消防通道被占用｜小区消防通道被车辆长期占用，物业不管不问
WL 文化旅游 wlj
  WL01 旅游投诉 wlj 1/1 summer
    P 旅行社强制购物｜参加旅行社组织的一日游，被导游强制带到购物店消费
    Q 咨询景区门票优惠政策｜区内景区对老年人和学生的门票优惠政策
  WL02 文化市场 wlj 1/1
    P 网吧接纳未成年人｜附近网吧允许未成年人进入上网
    Q 咨询图书馆开放时间｜区图书馆的开放时间和借阅证办理方式
ZW 政务服务 spj
  ZW01 办事服务 spj 1/3
    P 办事多次被要求补交材料｜在政务服务中心办理营业执照变更，多次被要求补交材料
    Q 咨询个体工商户营业执照办理｜开办个体工商户营业执照的流程和所需材料
"""

# Routing rules on top of the category defaults. Street rules send a leaf to the street's
# office (属地管理): leaf, then the streets (all when none are named).
STREET_RULES = [
    ("CX0301", []),
    ("CX0302", []),
    ("CG0101", ["bjjd", "qsjd", "chjd", "jsjd", "dhjd"]),
    ("CG0102", ["tyjd", "lqjd", "wjjd", "bljd"]),
    ("HB0103", ["chjd", "dhjd", "qsjd"]),
    ("AQ03", ["bljd", "wjjd"]),
]
# Community rules (leaf, street, community, department): old estates without property
# management are looked after by the street; two estates' secondary water supply is the
# water bureau's.
COMMUNITY_RULES = [
    ("CX0101", "qsjd", "工人村社区", "qsjd"),
    ("CX0101", "qsjd", "冶金社区", "qsjd"),
    ("CX0101", "bjjd", "码头社区", "bjjd"),
    ("GS01", "chjd", "映月社区", "swj"),
    ("GS01", "lqjd", "卧龙社区", "swj"),
]

TYPE_WEIGHTS = [
    ("consultation", 42),
    ("complaint", 26),
    ("help", 12),
    ("report", 8),
    ("suggestion", 7),
    ("praise", 5),
]
CHANNEL_WEIGHTS = [("phone", 68), ("wechat", 11), ("app", 7), ("web", 6), ("city", 5), ("email", 1), ("api", 2)]
# Share of each type the agent answers at once (直接办结) instead of dispatching.
ANSWER_SHARE = {"consultation": 0.62, "praise": 0.5, "suggestion": 0.12, "help": 0.06, "complaint": 0.02}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
    "姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯俊峰琳雪梅晨欣悦子涵雨轩佳怡思远"
PHONE_PREFIXES = ("13", "15", "17", "18", "19", "13", "18", "15")

CONTENT = {
    "complaint": "{caller}来电反映：{place}{detail}。诉求：请相关部门尽快核实处理。",
    "help": "{caller}来电求助：{place}{detail}，希望相关部门帮忙协调解决。",
    "report": "{caller}来电举报：{place}{detail}，请求相关部门依法查处。",
    "consultation": "{caller}来电咨询：{detail}？来电人居住在{place}。",
    "suggestion": "{caller}来电建议：{place}一带{title}的情况时有发生，建议相关部门加强日常巡查和监管，"
    "建立长效管理机制。",
    "praise": "{caller}来电表扬：此前反映{place}{title}的问题，{dept}工作人员接单后及时到现场处理，态度热情、"
    "办事高效，问题得到解决，特来电致谢。",
}
ANSWERS = [
    "已根据知识库向来电人解答{leaf}的相关政策和办理流程，告知所需材料及咨询电话，来电人表示清楚。",
    "已告知来电人{leaf}事项可通过“江州政务服务”网站或到区政务服务中心窗口办理，来电人表示认可。",
    "已向来电人解释{leaf}的有关规定，并提供主管部门办公地址和工作时间，来电人无其他诉求。",
]
PRAISE_ANSWER = "已记录来电人的表扬意见，将转达{dept}，感谢来电人对12345热线工作的支持。"
RESULTS = [
    "经{dept}工作人员现场核实，来电人反映的问题属实。已责令责任方立即整改，目前问题已解决，并已电话告知来电人处理结果。",
    "接单后我单位立即安排人员到现场查看，会同{community}及物业服务企业共同处理，问题已得到解决，后续将加强巡查。"
    "已与来电人沟通，来电人表示认可。",
    "经核查，该问题涉及历史遗留原因，我单位已制定整改方案，限期完成整改；已向来电人做好解释工作。",
    "经调查，来电人反映情况部分属实，已对相关经营者进行约谈并下达责令改正通知书，将跟踪整改落实情况。",
]
CONSULT_RESULT = "已电话联系来电人，就其咨询的{leaf}问题进行详细解答，告知办理流程、所需材料和办理地点。"
RETURN_REASONS = [
    ("territory", "经核实，该地址不在我单位管辖范围内，应由属地街道办理", "属地管理职责分工文件"),
    ("ownership", "该事项不属于我单位法定职责，请中心重新研判", "本单位“三定”方案"),
    ("overlap", "该问题涉及多个部门职能交叉，建议由牵头部门办理", "区政府职责分工意见"),
    ("other", "来电人提供的地址信息不详，多次联系未果，无法核实", None),
]
REJECT_RETURN = "经中心审核，该事项属于你单位职责范围，退单理由不成立，请按时办理。"
REDISPATCH = "退单理由成立，改派至{dept}办理。"
EXTENSION_REASONS = [
    "该问题需协调多个单位共同处理，申请延期办理。",
    "整改涉及施工，需要一定工期，申请延期办理。",
    "需等待相关检测结果出具后方能答复，申请延期。",
]
REJECT_EXTENSION = "该问题应在规定时限内办结，不同意延期。"
SUSPENSION_REASONS = [
    "当事双方已进入诉讼程序，申请挂起，待法院判决后继续办理。",
    "维修需在供暖季结束后施工，申请挂起。",
    "来电人外出暂时无法配合现场核实，申请挂起。",
]
REJECT_SUSPENSION = "挂起理由不充分，请继续办理。"
RESUME_REASON = "挂起事由已消除，恢复办理。"
CLOSE_LATE = "回访时限已过，未能完成回访，按未回访归档。"
RECTIFICATION_VERIFIED = "已与来电人联系核实，对办理中存在的问题进行了梳理。"
RECTIFICATION_MEASURES = [
    "已重新安排人员现场处理，问题已整改到位，并向来电人致歉。",
    "已对承办人员进行批评教育，完善了工作流程，加强日常巡查。",
    "该诉求受政策限制暂无法解决，已当面向来电人做好解释说明。",
]
REJECT_REPLY = "答复内容过于简单，未说明具体处理措施和结果，请补充完善后重新答复。"
REHANDLE = "来电人对处理结果不满意，反映问题未实际解决，经研判属承办单位原因，请重新办理。"
DISSATISFIED_CLOSE = "来电人不满意，但诉求超出政策规定，已做好解释说明，予以归档。"
CANCEL_REASONS = ["来电人表示问题已自行解决，申请撤销。", "重复录入，予以撤销。", "无效来电，予以撤销。"]
MERGE_REASON = "重复诉求，并入主工单办理。"
SUPERVISION_ANSWERS = [
    "已收到督办单，单位负责人已召集相关科室研究，明确专人负责，将于近日办结并答复来电人。",
    "已督促承办科室加快办理，现场整改正在进行，预计三个工作日内完成。",
    "已安排分管领导牵头协调，问题已基本解决，将尽快提交办理结果。",
]
# The scheduler's notices, as hotline.workflow.rules words them.
DEADLINE_WORDS = {"sign": "签收", "handle": "办理", "callback": "回访"}
COMMENTS = {
    5: "处理很及时，非常满意。",
    4: "满意，谢谢。",
    3: "基本满意，希望加强日常管理。",
    2: "问题没有彻底解决。",
    1: "没有人联系我，问题依然存在。",
}
RATINGS = [5, 4, 3, 2, 1]
RATING_WEIGHTS = [52, 24, 11, 7, 6]


@dataclass(frozen=True)
class Street:
    code: str
    name: str
    lat: float
    lng: float
    roads: tuple[str, ...]
    communities: tuple[str, ...]


@dataclass(frozen=True)
class Leaf:
    """A leaf of the category tree, with what citizens say about it."""

    code: str
    name: str
    department: str
    problem_weight: float  # complaints, requests for help, reports, suggestions, praise
    question_weight: float  # consultations
    problems: tuple[tuple[str, str], ...]  # (title, detail)
    questions: tuple[tuple[str, str], ...]
    flags: frozenset[str]


def _parse_streets(text: str) -> list[Street]:
    lines = text.strip("\n").splitlines()
    streets = []
    for head, communities in zip(lines[::2], lines[1::2], strict=True):
        code, name, lat, lng, *roads = head.split()
        streets.append(Street(code, name, float(lat), float(lng), tuple(roads), tuple(communities.split())))
    return streets


def _parse_categories(text: str) -> tuple[list[tuple[str, str, str | None, str]], list[Leaf]]:
    """The nodes of CATEGORY_TEXT in order (code, name, parent code, department), and its leaves."""
    nodes: list[tuple[str, str, str | None, str]] = []
    leaves: list[list] = []  # code, name, department, weights, problems, questions, flags
    path: list[str] = []
    for line in text.strip("\n").splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        kind, _, rest = line.strip().partition(" ")
        if kind in ("P", "Q"):
            title, detail = rest.split("｜")
            leaves[-1][4 if kind == "P" else 5].append((title, detail))
            continue
        code, name, department, *more = line.split()
        del path[depth:]
        nodes.append((code, name, path[-1] if path else None, department))
        path.append(code)
        if more:
            weights = tuple(float(w) for w in more[0].split("/"))
            leaves.append([code, name, department, weights, [], [], frozenset(more[1:])])
    return nodes, [
        Leaf(code, name, dept, wp, wq, tuple(problems), tuple(questions), flags)
        for code, name, dept, (wp, wq), problems, questions, flags in leaves
    ]


STREETS = _parse_streets(STREETS_TEXT)
CATEGORY_NODES, LEAVES = _parse_categories(CATEGORY_TEXT)


def demo_codes() -> list[str]:
    """The department codes of the demo district: the bureaus, then the street offices."""
    return [code for code, _, _ in DEPARTMENTS] + [street.code for street in STREETS]


# --- the directory --------------------------------------------------------------------------

Actor = tuple[int | None, str, str]  # id, username, role
SCHEDULER: Actor = (None, "scheduler", "system")
CITIZEN: Actor = (None, "citizen", "citizen")


@dataclass
class _Place:
    street_code: str
    street: str
    community: str
    estates: list[str]
    roads: tuple[str, ...]
    lat: float
    lng: float


@dataclass
class _Directory:
    departments: dict[str, tuple[int, str, str]]  # code -> (id, name, short name)
    codes: dict[int, str]  # id -> code
    leaf_ids: list[int]  # category id of each leaf of LEAVES
    places: list[_Place]
    routes: list[list[tuple[str, str]]]  # [leaf][place] -> (department code, routed_by)
    rules: int
    handlers: dict[int, Actor]
    leaders: dict[int, Actor]
    agents: list[Actor]
    supervisors: list[Actor]


def _build_directory(session: Session, runtime, now: datetime, rng: random.Random) -> _Directory:
    """Departments, categories, routing rules and users, through hotline.directory."""
    departments: dict[str, tuple[int, str, str]] = {}
    offices = [(s.code, f"{DISTRICT}{s.name}办事处", f"{s.name}办") for s in STREETS]
    for code, name, short in DEPARTMENTS + offices:
        dept = directory.create_department(session, code=code, name=name, now=now)
        departments[code] = (dept.id, name, short)

    category_ids = {}
    for code, name, parent, department in CATEGORY_NODES:
        category = directory.create_category(
            session, runtime, code=code, name=name, parent=parent, department=department
        )
        category_ids[code] = category.id

    places = []
    for s in STREETS:
        for community in s.communities:
            directory.create_place(session, street=s.name, community=community)
            stem = community.removesuffix("社区")
            estates = [stem + suffix for suffix in rng.sample(ESTATE_SUFFIXES, 2)]
            lat, lng = s.lat + rng.uniform(-0.012, 0.012), s.lng + rng.uniform(-0.012, 0.012)
            places.append(_Place(s.code, s.name, community, estates, s.roads, lat, lng))
    street_names = {s.code: s.name for s in STREETS}

    street_rules: dict[tuple[str, str], tuple[str, int]] = {}
    for leaf_code, streets in STREET_RULES:
        for code in streets or street_names:
            rule = directory.create_rule(session, department=code, category=leaf_code, street=street_names[code])
            street_rules[(leaf_code, code)] = (code, rule.id)
    community_rules: dict[tuple[str, str], tuple[str, int]] = {}
    for leaf_code, street, community, department in COMMUNITY_RULES:
        rule = directory.create_rule(
            session, department=department, category=leaf_code, street=street_names[street], community=community
        )
        community_rules[(leaf_code, community)] = (department, rule.id)
    # What hotline.routing.route answers: a community rule beats a street rule, which beats
    # the category's default (every rule here names a leaf, and every leaf a department).
    routes = []
    for leaf in LEAVES:
        row = []
        for place in places:
            hit = community_rules.get((leaf.code, place.community)) or street_rules.get((leaf.code, place.street_code))
            row.append((hit[0], f"rule:{hit[1]}") if hit else (leaf.department, f"category:{leaf.code}"))
        routes.append(row)

    # One argon2 hash for every demo user: hashing takes ~50 ms, and the password is the same.
    password_hash = hash_password(DEMO_PASSWORD)
    users: list[tuple[str, str, str | None, str]] = [
        ("admin", "admin", None, "系统管理员"),
        ("agent1", "agent", None, "受理员王丽"),
        ("agent2", "agent", None, "受理员陈磊"),
        ("supervisor1", "supervisor", None, "督办员刘洋"),
        ("supervisor2", "supervisor", None, "督办员赵静"),
    ]
    for code, (_, _, short) in departments.items():
        users.append((f"{code}.handler", "handler", code, f"{short}承办人"))
        users.append((f"{code}.leader", "leader", code, f"{short}负责人"))
    rows = [
        User(
            username=username,
            role=role,
            department_id=departments[code][0] if code else None,
            password_hash=password_hash,
            display_name=display,
            created_at=now,
            # The demo's people have read their notices up to two days ago.
            notices_read_before=now - timedelta(days=2),
        )
        for username, role, code, display in users
    ]
    session.add_all(rows)
    session.flush()
    actors = {u.username: (u.id, u.username, u.role) for u in rows}
    return _Directory(
        departments=departments,
        codes={dept_id: code for code, (dept_id, _, _) in departments.items()},
        leaf_ids=[category_ids[leaf.code] for leaf in LEAVES],
        places=places,
        routes=routes,
        rules=len(street_rules) + len(community_rules),
        handlers={dept_id: actors[f"{code}.handler"] for code, (dept_id, _, _) in departments.items()},
        leaders={dept_id: actors[f"{code}.leader"] for code, (dept_id, _, _) in departments.items()},
        agents=[actors["agent1"], actors["agent2"]],
        supervisors=[actors["supervisor1"], actors["supervisor2"]],
    )


# --- time -----------------------------------------------------------------------------------
# While playing, times are whole epoch seconds (the warning times, which the calendar counts
# in microseconds, are epoch microseconds); they become datetimes only when written.
# Asia/Shanghai has kept UTC+8 all year since 1991, so a local day is a fixed slice.

_OFFSET = 8 * 3600
_DAY = 86_400
_US = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_NEVER = 1 << 62
_HISTORY_DAYS = 183
_BATCH = 10_000
_PROGRESS_EVERY = 100_000
# Hour-of-day profile of intake (local time), from midnight.
_HOURS = [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3, 6, 8, 8, 7, 5, 5, 7, 7, 6, 5, 4, 4, 4, 3, 2, 1.5]
# The last ticket of the day so many days back ends in that state, so that every state of
# the workflow occurs whatever the number of tickets; the oldest is left overdue, with its
# supervision orders unanswered.
_SHOWCASE = [
    ("registered", 0),
    ("dispatched", 5),
    ("returned", 2),
    ("replied", 3),
    ("in_progress", 4),
    ("pending_callback", 1),
    ("merged", 6),
    ("cancelled", 7),
    ("suspended", 9),
    ("in_progress", 20),
]


def _day_of(ts: int) -> int:
    """The local (Asia/Shanghai) day of an epoch second, counted from 1970-01-01."""
    return (ts + _OFFSET) // _DAY


def _midnight(day: int) -> int:
    return day * _DAY - _OFFSET


def _dt(ts: int | None) -> datetime | None:
    return None if ts is None else _EPOCH + timedelta(seconds=ts)


def _iso(ts: int) -> str:
    return (_EPOCH + timedelta(seconds=ts)).isoformat()


def _cumulative(weights) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


class _Days:
    """The working-day calendar over epoch seconds, as hotline.deadlines.calendar counts it.

    Working days come from the database's calendar; add_working_days is asked of the
    calendar itself (and cached by local day); working seconds are counted here with the
    same whole-day rule, because they are asked for at every event.
    """

    def __init__(self, cal: WorkCalendar, first: int, last: int, rng: random.Random) -> None:
        self.cal = cal
        self.rng = rng
        self.first = first
        hours = cal.office_hours
        self.open = hours.start.hour * 3600 + hours.start.minute * 60
        self.close = hours.end.hour * 3600 + hours.end.minute * 60
        span = range(first, last + 1)
        days = [date.fromordinal(d + _EPOCH_ORDINAL) for d in span]
        self.working = [cal.is_working_day(d) for d in days]
        self.workdays = [d for d, w in zip(span, self.working, strict=True) if w]
        self.before = [bisect_left(self.workdays, d) for d in span]  # working days before, in the span
        self.years = [d.year for d in days]
        self.uncovered = {y for y in set(self.years) if y not in cal.covered_years}
        self._due: dict[tuple[int, int], tuple[int, bool]] = {}

    def is_working(self, day: int) -> bool:
        return self.working[day - self.first]

    def index(self, day: int) -> int:
        """Position in `workdays` of the first working day on or after `day`."""
        return self.before[day - self.first]

    def on_workday(self, index: int) -> int:
        """A random moment in office hours of the working day at that position."""
        return _midnight(self.workdays[index]) + self.open + self.rng.randrange(self.close - self.open)

    def in_office(self, ts: int) -> bool:
        day = _day_of(ts)
        return self.working[day - self.first] and self.open <= ts + _OFFSET - day * _DAY < self.close

    def opening(self, ts: int) -> int:
        """WorkCalendar.next_office_time: ts in office hours, else the next opening."""
        day = _day_of(ts)
        if self.working[day - self.first]:
            second = ts + _OFFSET - day * _DAY
            if self.open <= second < self.close:
                return ts
            if second < self.open:
                return _midnight(day) + self.open
        return _midnight(self.workdays[self.before[day + 1 - self.first]]) + self.open

    def office(self, ts: int) -> int:
        """When someone at work does what `ts` asks: then, or a while after the next opening."""
        moved = self.opening(ts)
        return moved if moved == ts else moved + self.rng.randrange(5400)

    def provisional(self, first: int, last: int) -> bool:
        """Whether the days from first to last touch a year without holiday data."""
        if not self.uncovered:
            return False
        if first > last:
            first, last = last, first
        y1, y2 = self.years[first - self.first], self.years[last - self.first]
        return any(y in self.uncovered for y in range(y1, y2 + 1))

    def working_due(self, ts: int, n: int) -> tuple[int, bool]:
        """WorkCalendar.add_working_days; it depends only on the local day of `ts`."""
        key = (_day_of(ts), n)
        hit = self._due.get(key)
        if hit is None:
            due = self.cal.add_working_days(_dt(ts), n)
            hit = self._due[key] = (round(due.at.timestamp()), due.provisional)
        return hit

    def due(self, ts: int, limit: Limit) -> tuple[int, bool]:
        """hotline.deadlines.sla.due over epoch seconds."""
        if limit.working_days is not None:
            return self.working_due(ts, limit.working_days)
        hours = limit.hours if limit.hours is not None else (limit.minutes or 0) / 60
        return ts + round(hours * 3600), False

    def position(self, ts: int) -> int:
        """Working seconds from the span's start to ts (whole working days count)."""
        day = _day_of(ts)
        i = day - self.first
        return self.before[i] * _DAY + (ts + _OFFSET - day * _DAY if self.working[i] else 0)

    def add_working_us(self, start_us: int, s_us: int) -> tuple[int, bool]:
        """WorkCalendar.add_working_seconds in epoch microseconds: (instant, provisional)."""
        local = start_us + _OFFSET * _US
        day = local // (_DAY * _US)
        i = day - self.first
        offset = local - day * _DAY * _US if self.working[i] else 0
        k, rest = divmod(offset + s_us, _DAY * _US)
        base = self.before[i]
        if rest == 0:
            # Exactly at a day boundary: the end of the previous working day.
            at = (self.workdays[base + k - 1] + 1) * _DAY * _US - _OFFSET * _US
        else:
            at = self.workdays[base + k] * _DAY * _US - _OFFSET * _US + rest
        if s_us >= 0 and at < start_us:
            at = start_us
        return at, self.provisional(day, (at + _OFFSET * _US) // (_DAY * _US))


# --- one ticket's life ----------------------------------------------------------------------


class _Cut(Exception):
    """The ticket's life goes on past now (or past its showcase state): it stops here."""


# Rows kept as lists while a ticket lives, indexed by these positions.
A_ID, A_DEPT, A_ROLE, A_STATUS, A_DISPATCHED, A_SIGNED, A_SIGNED_BY, A_REPLIED, A_REPLIED_BY, A_RESULT = range(10)
# The facts performance management counts, kept on the main assignment (rules.py).
A_SIGN_BY, A_SIGNED_ON_TIME, A_RETURNED, A_HANDLE_BY, A_FIRST_REPLIED, A_REPLIED_ON_TIME, A_REHANDLES = range(10, 17)
P_ID, P_KIND, P_STATUS, P_DEPT, P_BY, P_AT, P_REASON, P_CODE, P_BASIS, P_DAYS, P_FROM = range(11)
P_DECIDED_BY, P_DECIDED_AT, P_DECISION = range(11, 14)
O_ID, O_DEPT, O_ISSUED, O_MESSAGE, O_STATUS, O_ANSWERED, O_ANSWERED_BY, O_ANSWER = range(8)
I_ID, I_CREATED, I_EXPIRES, I_USED, I_REVOKED, I_MESSAGE, I_HASH = range(7)
R_ID, R_CALLBACK, R_DEPT, R_STATUS, R_OPENED, R_DUE, R_PROVISIONAL, R_VERIFICATION, R_MEASURES = range(9)
R_REPORTED, R_REPORTED_BY, R_DECIDED, R_DECIDED_BY, R_NEXT_DUE = range(9, 14)
_ANSWERABLE = frozenset({"dispatched", "returned", "in_progress", "suspended", "replied", "pending_callback"})
_FINAL = frozenset({"archived", "merged", "cancelled"})


class _Ticket:
    """A ticket while it lives: the columns the gateway keeps, and the rows it adds."""

    __slots__ = (
        "id", "number", "type", "urgency", "leaf", "place", "reply_wanted", "limits", "created", "stop_at",
        "state", "version", "last", "events", "main", "dispatch_count", "designated", "return_from",
        "master_id", "rehandles", "answer", "result", "close_reason", "dispatched_at", "signed_at",
        "replied_at", "closed_at", "sign_by", "handle_by", "callback_by", "provisional", "handle_started",
        "callback_started", "extension_days", "extension_total", "suspended_seconds", "suspended_at",
        "due_at", "due_kind", "warn_us", "step", "next_due_us", "assignments", "approvals", "callbacks",
        "unreached", "last_reached", "escalations", "orders", "notices", "later", "phone", "updated",
        "invitation_sent", "exhausted_at", "invitations", "messages", "rects",
    )  # fmt: skip

    def __init__(self, ticket_id: int, number: str, created: int) -> None:
        self.id, self.number, self.created = ticket_id, number, created
        self.state, self.version, self.last, self.updated = "registered", 1, created, created
        self.stop_at: str | None = None
        self.events: list[tuple] = []
        self.main: int | None = None
        self.dispatch_count = self.rehandles = self.unreached = self.step = 0
        self.extension_days = self.extension_total = 0
        self.suspended_seconds = 0.0
        self.designated = self.provisional = False
        self.return_from = self.master_id = self.answer = self.result = self.close_reason = None
        self.dispatched_at = self.signed_at = self.replied_at = self.closed_at = None
        self.sign_by = self.handle_by = self.callback_by = self.suspended_at = None
        self.handle_started = self.callback_started = self.invitation_sent = self.exhausted_at = None
        self.due_at = self.due_kind = self.warn_us = self.next_due_us = None
        self.assignments: list[list] = []
        self.approvals: list[list] = []
        self.callbacks: list[tuple] = []
        self.last_reached: tuple[int, bool] | None = None  # rating, solved
        self.escalations: dict[tuple[str, int, str], int] = {}  # (kind, deadline, step) -> at
        self.orders: list[list] = []
        self.notices: list[tuple] = []
        self.invitations: list[list] = []
        self.messages: list[tuple] = []
        self.rects: list[list] = []
        # What people do beside the ticket's course, in time order: (at, seq, what, row).
        self.later: list[tuple[int, int, str, list]] = []

    def active(self, role: str) -> list | None:
        for a in self.assignments:
            if a[A_ROLE] == role and a[A_STATUS] != "withdrawn":
                return a
        return None

    def pending(self, kind: str) -> list | None:
        for p in self.approvals:
            if p[P_KIND] == kind and p[P_STATUS] == "pending":
                return p
        return None

    def open_invitation(self) -> list | None:
        for i in self.invitations:
            if i[I_USED] is None and i[I_REVOKED] is None:
                return i
        return None


class _Life:
    """Plays tickets' lives event by event, as the gateway and the scheduler record them."""

    def __init__(
        self, rng: random.Random, wf: Workflow, days: _Days, d: _Directory, now: int, settings, link_key: bytes
    ) -> None:
        self.rng = rng
        self.wf = wf
        self.days = days
        self.d = d
        self.now = now
        self.ids = dict.fromkeys(
            ("assignments", "approvals", "callbacks", "supervision_orders", "rating_invitations", "messages",
             "rectifications"), 0
        )  # fmt: skip
        self.link_key = link_key
        self.public_url = settings.public_url.rstrip("/")
        self.district_name = settings.district_name
        self.seq = 0
        limits = wf.limits
        self.sign_limits, self.handle_limits = limits.sign, limits.handle
        self.callback_limit = limits.callback
        self.return_window = limits.return_window
        self.designate_after = limits.designate_after_dispatches
        self.extension_cap = limits.extension_cap_working_days
        self.attempts = limits.callback_attempts
        self.agent_rehandles = limits.agent_rehandles
        self.rating_link = limits.rating_link
        self.rectification = limits.rectification
        self.satisfied = frozenset(limits.satisfied_ratings)
        self.warning = limits.warning
        self.escalation = limits.escalation
        self._limits: dict[tuple[str, str], tuple[Limit, Limit, bool]] = {}

    def limits(self, ticket_type: str, urgency: str) -> tuple[Limit, Limit, bool]:
        """The sign and handle limits of a ticket, and whether handling runs in natural time."""
        key = (ticket_type, urgency)
        hit = self._limits.get(key)
        if hit is None:
            handle = self.handle_limits.pick(ticket_type, urgency)
            hit = self._limits[key] = (self.sign_limits.pick(ticket_type, urgency), handle, handle.working_days is None)
        return hit

    def new_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    # -- who ------------------------------------------------------------------------------

    def agent(self) -> Actor:
        return self.rng.choice(self.d.agents)

    def supervisor(self) -> Actor:
        return self.rng.choice(self.d.supervisors)

    def centre(self, supervisor_share: float = 0.2) -> Actor:
        return self.supervisor() if self.rng.random() < supervisor_share else self.agent()

    def staff(self, dept_id: int) -> Actor:
        """Someone of the department: mostly its handler, sometimes its leader."""
        return self.d.leaders[dept_id] if self.rng.random() < 0.1 else self.d.handlers[dept_id]

    # -- the clocks (hotline.deadlines.sla) -----------------------------------------------------------

    def _recompute(self, tk: _Ticket) -> None:
        """sla.recompute: every clock from its inputs, then what the scheduler watches."""
        days = self.days
        provisional = False
        if tk.dispatched_at is not None:
            tk.sign_by, provisional = days.due(tk.dispatched_at, tk.limits[0])
        if tk.handle_started is not None:
            tk.handle_by, p = self._handle_by(tk)
            provisional = provisional or p
        if tk.callback_started is not None:
            tk.callback_by, p = days.due(tk.callback_started, self.callback_limit)
            provisional = provisional or p
        tk.provisional = provisional
        running = self._running(tk)
        if running is None:
            tk.due_at = tk.due_kind = tk.warn_us = tk.next_due_us = None
            return
        kind, deadline, start = running
        if (kind, deadline) != (tk.due_kind, tk.due_at):
            tk.step = 0
        tk.due_kind, tk.due_at = kind, deadline
        limit = tk.limits[0] if kind == "sign" else tk.limits[1] if kind == "handle" else self.callback_limit
        tk.warn_us = self._warn_us(limit, deadline, start if start is not None else deadline)
        tk.next_due_us = self._next_step_us(tk)

    def _handle_by(self, tk: _Ticket) -> tuple[int, bool]:
        """sla.compute_handle_by: the limit from the clock's start, extensions, time suspended."""
        days, limit = self.days, tk.limits[1]
        if tk.limits[2]:
            at, provisional = days.due(tk.handle_started, limit)
            if tk.extension_days:
                at, provisional = days.working_due(at, tk.extension_days)
            return at + round(tk.suspended_seconds), provisional
        at, provisional = days.working_due(tk.handle_started, limit.working_days + tk.extension_days)
        if tk.suspended_seconds:
            moved, p = days.add_working_us(at * _US, round(tk.suspended_seconds * _US))
            return moved // _US, provisional or p
        return at, provisional

    @staticmethod
    def _running(tk: _Ticket) -> tuple[str, int, int | None] | None:
        """sla.running_deadline: (kind, deadline, clock start)."""
        state = tk.state
        if state == "dispatched" and tk.signed_at is None and tk.sign_by is not None:
            return "sign", tk.sign_by, tk.dispatched_at
        if state in ("dispatched", "in_progress", "returned") and tk.handle_by is not None:
            return "handle", tk.handle_by, tk.handle_started if tk.handle_started is not None else tk.dispatched_at
        if state == "pending_callback" and tk.callback_by is not None:
            return "callback", tk.callback_by, tk.callback_started
        return None

    def _warn_us(self, limit: Limit, deadline: int, start: int) -> int:
        """sla.warn_time, in epoch microseconds."""
        w = self.warning
        if limit.working_days is None:
            lead = min((deadline - start) * w.fraction, w.max_working_days * 86400)
            return deadline * _US - round(lead * _US)
        total = self.days.position(deadline) - self.days.position(start)
        lead = min(total * w.fraction, w.max_working_days * 86400)
        at, _ = self.days.add_working_us(start * _US, round((total - lead) * _US))
        return min(at, deadline * _US)

    def _next_step_us(self, tk: _Ticket) -> int | None:
        """sla.next_step_time: the next ladder step; for the callback clock, the rating link,
        then the close."""
        if tk.due_kind == "callback":
            if tk.exhausted_at is not None:
                return tk.exhausted_at * _US
            if tk.reply_wanted and tk.phone and tk.invitation_sent is None:
                return tk.callback_started * _US
            return tk.callback_by * _US
        if tk.due_kind not in LADDER_KINDS or tk.step >= len(LADDER):
            return None
        name = LADDER[tk.step]
        if name == "warn":
            return tk.warn_us
        if name == "urge":
            return tk.due_at * _US
        esc = self.escalation
        after = esc.supervise_after_working_days if name == "supervise" else esc.report_after_working_days
        return self.days.add_working_us(tk.due_at * _US, round(after * 86400 * _US))[0]

    # -- recording ------------------------------------------------------------------------

    def _at(self, tk: _Ticket, t: int) -> int:
        """The time of the next event: after the last one and what came between, before now."""
        if t <= tk.last:
            t = tk.last + self.rng.randint(30, 600)
        self._background(tk, min(t, self.now))
        if t >= self.now or tk.state in _FINAL:  # past now, or the scheduler closed the ticket
            raise _Cut
        return t

    def _done(self, tk: _Ticket, event: str, t: int, actor: Actor, to_state: str, details: dict) -> None:
        """What the gateway does after an event's effects: clocks, version, history."""
        from_state = tk.state
        tk.state = to_state
        self._recompute(tk)
        tk.version += 1
        tk.last = tk.updated = t
        tk.events.append((event, actor, from_state, to_state, t, details))
        if to_state == tk.stop_at and from_state != to_state:
            self._background(tk, self.now)
            raise _Cut

    def _aside(self, tk: _Ticket, event: str, t: int, actor: Actor, details: dict) -> None:
        """A history row outside the workflow (hotline.evaluation.ratings's): no state, no version."""
        tk.last = t
        tk.events.append((event, actor, tk.state, tk.state, t, details))

    def _later(self, tk: _Ticket, t: int, what: str, row: list) -> None:
        self.seq += 1
        insort(tk.later, (t, self.seq, what, row))

    # -- the scheduler, and what people do beside the ticket's course -----------------------

    def _background(self, tk: _Ticket, limit: int) -> None:
        """Sweeps of the scheduler, and leaders answering supervision orders, before `limit`."""
        while True:
            sweep = None
            if tk.next_due_us is not None:
                # The first sweep (once a minute) after the step falls due, or after the last event.
                sweep = max(-(-tk.next_due_us // _US), tk.last) + 1 + (tk.id + tk.version) % 59
            if tk.later and (sweep is None or tk.later[0][0] < sweep):
                t = max(tk.later[0][0], tk.last + 1)
                if t >= limit:
                    return
                _, _, what, row = tk.later.pop(0)
                if what == "answer":
                    self._answer_order(tk, t, row)
                elif what == "report":
                    self._report_rectification(tk, t, row)
                else:
                    self._accept_rectification(tk, t, row)
                continue
            if sweep is None or sweep >= limit:
                return
            if tk.due_kind == "callback":
                self._evaluate(tk, sweep)
                continue
            if not self.days.in_office(sweep):
                # Notices go out in office hours: the sweep puts the ticket off till the opening.
                tk.next_due_us = self.days.opening(sweep) * _US
                continue
            self._sweep(tk, sweep)

    def _sweep(self, tk: _Ticket, now: int) -> None:
        """scheduler._escalate: every step of the ladder due at this sweep, once."""
        t = now
        while tk.next_due_us is not None and tk.next_due_us <= now * _US and tk.step < len(LADDER):
            step = LADDER[tk.step]
            if not (step == "warn" and now >= tk.due_at):  # already red: a warning would be noise
                t = max(t, tk.last + 1)
                self._ladder_step(tk, step, t)
            tk.step += 1
            tk.next_due_us = self._next_step_us(tk)

    def _ladder_step(self, tk: _Ticket, step: str, t: int) -> None:
        """A warn, urge, supervise or report event by the scheduler, with its rows."""
        kind, deadline, dept = tk.due_kind, tk.due_at, tk.main
        tk.escalations.setdefault((kind, deadline, step), t)
        local = datetime.fromtimestamp(deadline, LOCAL_TZ)
        deadline_text = f"{DEADLINE_WORDS[kind]}时限（{local:%Y-%m-%d %H:%M}）"
        details: dict[str, Any] = {"auto": True, "step": step, "deadline": kind, "deadline_at": _iso(deadline)}
        number = tk.number
        if step == "warn":
            body = f"{deadline_text}将到，请抓紧办理。"
            self._notice(tk, dept, "handler", step, f"预警：工单 {number} 即将超期", body, t)
        elif step == "urge":
            self._notice(tk, dept, "handler", step, f"催办：工单 {number}", f"{deadline_text}已到，请尽快办理。", t)
        elif step == "supervise":
            message = f"工单 {number} {deadline_text}已超期，请单位负责人督促办理并答复。"
            order = [self.new_id("supervision_orders"), dept, t, message, "open", None, None, None]
            tk.orders.append(order)
            details["supervision_order"] = order[O_ID]
            self._notice(tk, dept, "leader", step, f"督办单：工单 {number}", message, t)
            if tk.stop_at is None and self.rng.random() < 0.7:
                self._later(tk, self.days.office(t + self.rng.randint(3600, 8 * 3600)), "answer", order)
        else:
            body = f"工单 {number} {deadline_text}严重超期，已列入向区领导的通报。"
            self._notice(tk, None, "supervisor", step, f"通报：工单 {number}", body, t)
            self._notice(tk, dept, "leader", step, f"通报：工单 {number}", body, t)
        self._done(tk, step, t, SCHEDULER, tk.state, details)

    def _notice(self, tk: _Ticket, dept: int | None, role: str, kind: str, title: str, body: str, t: int) -> None:
        tk.notices.append((dept, role, kind, title, body, t))

    def _evaluate(self, tk: _Ticket, now: int) -> None:
        """scheduler._evaluate: the rating link (in office hours), or the close once the
        attempts ran out or the window passed."""
        if tk.reply_wanted and tk.phone and tk.invitation_sent is None and tk.exhausted_at is None:
            if not self.days.in_office(now):
                tk.next_due_us = self.days.opening(now) * _US
            elif tk.last_reached is not None:  # rated already: nothing to send (guard can_invite)
                tk.invitation_sent = now
                tk.next_due_us = self._next_step_us(tk)
            else:
                self._invite(tk, now)
            return
        if self.close_reason_for(tk, now, "system", None) is None:
            tk.next_due_us = None  # a dissatisfied callback waits for a person
            return
        self._close(tk, now, SCHEDULER, None, {"auto": True})

    def _invite(self, tk: _Ticket, t: int) -> None:
        """evaluation.send_invitation: a one-use rating link, by text message (kept, never sent)."""
        expires, _ = self.days.due(t, self.rating_link)
        token = new_link_token(self.link_key)
        url = f"{self.public_url}/rate/{token}"
        body = (
            f"【{self.district_name}12345】您反映的问题（工单号{tk.number}）已办理完毕，"
            f"请点击链接对办理情况进行评价：{url} （{datetime.fromtimestamp(expires, LOCAL_TZ):%m月%d日}前有效）"
        )
        message_id = self.new_id("messages")
        tk.messages.append((message_id, tk.phone, body, t))
        invitation_id = self.new_id("rating_invitations")
        tk.invitations.append([invitation_id, t, expires, None, None, message_id, token_digest(token)])
        tk.invitation_sent = t
        details = {"auto": True, "invitation": invitation_id, "expires_at": _iso(expires)}
        self._done(tk, "invite", t, SCHEDULER, tk.state, details)

    def _report_rectification(self, tk: _Ticket, t: int, rect: list) -> None:
        """The department reports on its rectification (差评整改)."""
        actor = self.d.handlers[rect[R_DEPT]]
        measures = self.rng.choice(RECTIFICATION_MEASURES)
        rect[R_STATUS], rect[R_VERIFICATION], rect[R_MEASURES] = "reported", RECTIFICATION_VERIFIED, measures
        rect[R_REPORTED], rect[R_REPORTED_BY], rect[R_NEXT_DUE] = t, actor[0], None
        self._aside(tk, "rectification_report", t, actor, {"rectification": rect[R_ID], "measures": measures})
        self._later(tk, self.days.office(t + self.rng.randint(2 * 3600, 30 * 3600)), "accept", rect)

    def _accept_rectification(self, tk: _Ticket, t: int, rect: list) -> None:
        actor = self.supervisor()
        rect[R_STATUS], rect[R_DECIDED], rect[R_DECIDED_BY] = "accepted", t, actor[0]
        self._aside(tk, "rectification_accept", t, actor, {"rectification": rect[R_ID], "reason": None})

    def _answer_order(self, tk: _Ticket, t: int, order: list) -> None:
        """The leader answers a supervision order, while the department still has the ticket."""
        if tk.state not in _ANSWERABLE or order[O_DEPT] != tk.main:
            return
        actor = self.d.leaders[order[O_DEPT]]
        text = self.rng.choice(SUPERVISION_ANSWERS)
        order[O_STATUS], order[O_ANSWERED], order[O_ANSWERED_BY], order[O_ANSWER] = "answered", t, actor[0], text
        self._done(tk, "answer_supervision", t, actor, tk.state, {"order": order[O_ID], "answer": text})

    # -- events (each mirrors its effects in hotline.workflow.rules) -------------------------

    def dispatch(
        self,
        tk: _Ticket,
        t: int,
        actor: Actor,
        code: str,
        routed_by: str,
        co: str | None = None,
        redispatch_reason: str | None = None,
    ) -> None:
        t = self._at(tk, t)
        details: dict[str, Any] = {}
        event = "dispatch"
        if redispatch_reason is not None:
            event = "redispatch"
            details = {"department": code, "reason": redispatch_reason}
            details["approval_id"] = self._decide(tk, "return", "approved", t, actor, redispatch_reason)
        elif co:
            details["co_departments"] = [co]
        for a in tk.assignments:
            if a[A_STATUS] != "withdrawn":
                a[A_STATUS] = "withdrawn"
        dept_id, name, _ = self.d.departments[code]
        sign_by, handle_by = self.days.due(t, tk.limits[0])[0], self.days.due(t, tk.limits[1])[0]
        main = [self.new_id("assignments"), dept_id, "main", "dispatched", t] + [None] * 5
        tk.assignments.append(main + [sign_by, None, False, handle_by, None, None, 0])
        if co:
            co_id = self.d.departments[co][0]
            co_row = [self.new_id("assignments"), co_id, "co", "dispatched", t] + [None] * 5
            tk.assignments.append(co_row + [None, None, False, None, None, None, 0])
        tk.main = dept_id
        tk.dispatch_count += 1
        tk.designated = tk.dispatch_count >= self.designate_after
        tk.dispatched_at = t
        tk.signed_at = tk.replied_at = tk.return_from = None
        tk.handle_started, tk.extension_days, tk.suspended_seconds = t, 0, 0.0
        details.update({
            "department": code, "department_name": name, "routed_by": routed_by,
            "co_departments": [co] if co else [], "dispatch_no": tk.dispatch_count, "designated": tk.designated,
        })  # fmt: skip
        self._done(tk, event, t, actor, "dispatched", details)

    def sign(self, tk: _Ticket, t: int, co: bool = False) -> None:
        a = tk.active("co" if co else "main")
        actor = self.staff(a[A_DEPT])
        t = self._at(tk, t)
        a[A_STATUS], a[A_SIGNED], a[A_SIGNED_BY] = "signed", t, actor[0]
        if co:
            self._done(tk, "sign", t, actor, tk.state, {"department_id": a[A_DEPT], "as_co_handler": True})
        else:
            tk.signed_at = t
            a[A_SIGNED_ON_TIME] = a[A_SIGN_BY] is None or t <= a[A_SIGN_BY]
            self._done(tk, "sign", t, actor, "in_progress", {"department_id": a[A_DEPT]})

    def return_(self, tk: _Ticket, t: int, reason: tuple[str, str, str | None]) -> None:
        actor = self.staff(tk.main)
        t = self._at(tk, t)
        code, text, basis = reason
        tk.return_from = tk.state
        tk.active("main")[A_RETURNED] = True
        self._open(tk, "return", t, actor, text, code=code, basis=basis)
        details = {"reason": text, "reason_code": code}
        if basis:
            details["basis"] = basis
        self._done(tk, "return", t, actor, "returned", details)

    def reject_return(self, tk: _Ticket, t: int) -> None:
        actor = self.supervisor()
        t = self._at(tk, t)
        approval_id = self._decide(tk, "return", "rejected", t, actor, REJECT_RETURN)
        back, tk.return_from = tk.return_from, None
        self._done(tk, "reject_return", t, actor, back, {"reason": REJECT_RETURN, "approval_id": approval_id})

    def request_extension(self, tk: _Ticket, t: int, days: int, reason: str) -> None:
        actor = self.staff(tk.main)
        t = self._at(tk, t)
        self._open(tk, "extension", t, actor, reason, days=days)
        self._done(tk, "request_extension", t, actor, tk.state, {"days": days, "reason": reason})

    def decide_extension(self, tk: _Ticket, t: int, approve: bool) -> None:
        actor = self.supervisor()
        t = self._at(tk, t)
        if not approve:
            approval_id = self._decide(tk, "extension", "rejected", t, actor, REJECT_EXTENSION)
            details = {"reason": REJECT_EXTENSION, "approval_id": approval_id}
            self._done(tk, "reject_extension", t, actor, tk.state, details)
            return
        days = tk.pending("extension")[P_DAYS]
        approval_id = self._decide(tk, "extension", "approved", t, actor, None)
        tk.extension_days += days
        tk.extension_total += days
        self._sync_main_handle_by(tk)
        details = {"approval_id": approval_id, "days": days, "handle_by_before": _iso(tk.handle_by)}
        self._done(tk, "approve_extension", t, actor, tk.state, details)

    def request_suspension(self, tk: _Ticket, t: int, reason: str) -> None:
        actor = self.staff(tk.main)
        t = self._at(tk, t)
        self._open(tk, "suspension", t, actor, reason)
        self._done(tk, "request_suspension", t, actor, tk.state, {"reason": reason})

    def decide_suspension(self, tk: _Ticket, t: int, approve: bool) -> None:
        actor = self.supervisor()
        t = self._at(tk, t)
        if not approve:
            approval_id = self._decide(tk, "suspension", "rejected", t, actor, REJECT_SUSPENSION)
            details = {"reason": REJECT_SUSPENSION, "approval_id": approval_id}
            self._done(tk, "reject_suspension", t, actor, tk.state, details)
            return
        approval_id = self._decide(tk, "suspension", "approved", t, actor, None)
        tk.suspended_at = t
        self._done(tk, "approve_suspension", t, actor, "suspended", {"approval_id": approval_id})

    def resume(self, tk: _Ticket, t: int) -> None:
        actor = self.supervisor() if self.rng.random() < 0.3 else self.staff(tk.main)
        t = self._at(tk, t)
        if tk.limits[2]:
            paused = float(t - tk.suspended_at)
        else:
            paused = float(self.days.position(t) - self.days.position(tk.suspended_at))
        tk.suspended_seconds += max(paused, 0.0)
        tk.suspended_at = None
        self._sync_main_handle_by(tk)
        self._done(tk, "resume", t, actor, "in_progress", {"reason": RESUME_REASON, "suspended_seconds": paused})

    def _sync_main_handle_by(self, tk: _Ticket) -> None:
        """rules._sync_main_handle_by: the handle-by on-time completion is judged by."""
        main = tk.active("main")
        if main is not None and main[A_FIRST_REPLIED] is None:
            main[A_HANDLE_BY] = self._handle_by(tk)[0]

    def reply(self, tk: _Ticket, t: int, result: str, co: bool = False) -> None:
        a = tk.active("co" if co else "main")
        actor = self.staff(a[A_DEPT])
        t = self._at(tk, t)
        a[A_STATUS], a[A_REPLIED], a[A_REPLIED_BY], a[A_RESULT] = "replied", t, actor[0], result
        if a[A_ROLE] == "main" and a[A_FIRST_REPLIED] is None:
            a[A_FIRST_REPLIED] = t
            a[A_REPLIED_ON_TIME] = a[A_HANDLE_BY] is None or t <= a[A_HANDLE_BY]
        if co:
            self._done(tk, "reply", t, actor, tk.state, {"result": result, "as_co_handler": True})
        else:
            tk.result, tk.replied_at = result, t
            self._done(tk, "reply", t, actor, "replied", {"result": result})

    def approve_reply(self, tk: _Ticket, t: int) -> None:
        actor = self.supervisor()
        t = self._at(tk, t)
        tk.callback_started = t
        self._done(tk, "approve_reply", t, actor, "pending_callback", {})

    def reject_reply(self, tk: _Ticket, t: int) -> None:
        actor = self.supervisor()
        t = self._at(tk, t)
        self._reopen_main(tk)
        self._done(tk, "reject_reply", t, actor, "in_progress", {"reason": REJECT_REPLY})

    def answer(self, tk: _Ticket, t: int, text: str) -> None:
        actor = self.agent()
        t = self._at(tk, t)
        tk.answer, tk.replied_at, tk.callback_started = text, t, t
        self._done(tk, "answer", t, actor, "pending_callback", {"answer": text})

    def callback(self, tk: _Ticket, t: int, actor: Actor, rating: int | None, solved: bool | None) -> None:
        t = self._at(tk, t)
        reached = rating is not None
        comment = COMMENTS[rating] if reached and self.rng.random() < 0.6 else None
        attempt = len(tk.callbacks) + 1
        citizen = actor[2] == "citizen"
        callback_id = self.new_id("callbacks")
        tk.callbacks.append(
            (callback_id, attempt, reached, solved, rating, comment, "link" if citizen else "agent", actor[0], t,
             tk.main)
        )  # fmt: skip
        details: dict[str, Any] = {"reached": reached}
        if reached:
            details.update({"solved": solved, "rating": rating})
        if comment:
            details["comment"] = comment
        details["attempt"] = attempt
        if not reached:
            tk.unreached += 1
            if tk.unreached >= self.attempts:
                tk.exhausted_at = t  # the scheduler closes it as not called back
        else:
            tk.last_reached = (rating, solved)
            invitation = tk.open_invitation()
            if invitation is not None:
                # The citizen's rating uses the link; an agent's reaching the citizen retires it.
                invitation[I_USED if citizen else I_REVOKED] = t
            self._rated(tk, t, callback_id, rating, citizen)
        self._done(tk, "callback", t, actor, tk.state, details)

    def _rated(self, tk: _Ticket, t: int, callback_id: int, rating: int, citizen: bool) -> None:
        """evaluation.record_rating: a bad rating opens a rectification (差评整改)."""
        if rating in BAD_RATINGS and tk.main is not None:
            due, provisional = self.days.due(t, self.rectification)
            rect = [self.new_id("rectifications"), callback_id, tk.main, "open", t, due, provisional]
            rect += [None] * 6 + [due]
            tk.rects.append(rect)
            body = (
                f"市民评价为“{RATING_LABELS[rating]}”，请于 "
                f"{datetime.fromtimestamp(due, LOCAL_TZ):%Y-%m-%d} 前完成核实、整改并反馈。"
            )
            for role in ("handler", "leader"):
                self._notice(tk, tk.main, role, "rectification", f"差评整改：工单 {tk.number}", body, t)
            report = self.days.on_workday(self.days.index(_day_of(t) + 1) + self.rng.randint(0, 8))
            self._later(tk, report, "report", rect)
        if citizen and rating not in self.satisfied:
            body = "市民通过评价短信给出不满意评价，请决定重办或说明后归档。"
            self._notice(tk, None, "supervisor", "rating_review", f"市民不满意评价待审核：工单 {tk.number}", body, t)

    def close_reason_for(self, tk: _Ticket, t: int, role: str, reason: str | None) -> str | None:
        """rules._close_reason."""
        if tk.last_reached is not None:
            rating, solved = tk.last_reached
            if rating in self.satisfied and solved is not False:
                return "satisfied"
            return "dissatisfied_closed" if role != "system" and reason else None
        if tk.unreached >= self.attempts:
            return "not_called_back"
        if tk.callback_by is not None and t > tk.callback_by and role in ("system", "supervisor"):
            return "not_called_back"
        if not tk.reply_wanted:
            return "no_reply_wanted"
        return None

    def close(self, tk: _Ticket, t: int, actor: Actor, reason: str | None = None) -> None:
        self._close(tk, self._at(tk, t), actor, reason, {"reason": reason} if reason else {})

    def _close(self, tk: _Ticket, t: int, actor: Actor, reason: str | None, details: dict) -> None:
        close_reason = self.close_reason_for(tk, t, actor[2], reason)
        if close_reason is None:
            raise AssertionError(f"demo ticket {tk.number} closed without a reason the workflow accepts")
        tk.closed_at, tk.close_reason = t, close_reason
        details["close_reason"] = close_reason
        self._done(tk, "close", t, actor, "archived", details)

    def rehandle(self, tk: _Ticket, t: int, actor: Actor) -> None:
        t = self._at(tk, t)
        tk.rehandles += 1
        self._reopen_main(tk)
        main = tk.active("main")
        if main is not None:
            main[A_REHANDLES] += 1
        tk.handle_started, tk.extension_days, tk.suspended_seconds = t, 0, 0.0
        tk.callback_started = tk.callback_by = None
        self._done(tk, "rehandle", t, actor, "in_progress", {"reason": REHANDLE, "rehandle_no": tk.rehandles})

    def merge(self, tk: _Ticket, t: int, master: tuple) -> None:
        actor = self.agent() if tk.state == "registered" else self.centre(0.5)
        t = self._at(tk, t)
        tk.master_id = master[0]
        tk.closed_at, tk.close_reason = t, "merged"
        for a in tk.assignments:
            if a[A_STATUS] != "withdrawn":
                a[A_STATUS] = "withdrawn"
        details = {"master": master[0], "reason": MERGE_REASON, "master_number": master[1]}
        self._done(tk, "merge", t, actor, "merged", details)

    def cancel(self, tk: _Ticket, t: int) -> None:
        actor = self.centre()
        t = self._at(tk, t)
        reason = self.rng.choice(CANCEL_REASONS)
        tk.closed_at, tk.close_reason = t, "cancelled"
        self._done(tk, "cancel", t, actor, "cancelled", {"reason": reason, "close_reason": "cancelled"})

    def _reopen_main(self, tk: _Ticket) -> None:
        main = tk.active("main")
        if main is not None:
            main[A_STATUS], main[A_REPLIED] = "signed", None
        tk.replied_at = None

    def _open(self, tk: _Ticket, kind: str, t: int, actor: Actor, reason: str, *, code: str | None = None,
              basis: str | None = None, days: int | None = None) -> None:  # fmt: skip
        tk.approvals.append(
            [self.new_id("approvals"), kind, "pending", tk.main, actor[0], t, reason, code, basis, days, tk.state]
            + [None] * 3
        )

    def _decide(self, tk: _Ticket, kind: str, status: str, t: int, actor: Actor, reason: str | None) -> int | None:
        approval = tk.pending(kind)
        if approval is None:
            return None
        approval[P_STATUS], approval[P_DECIDED_AT], approval[P_DECIDED_BY] = status, t, actor[0]
        approval[P_DECISION] = reason
        return approval[P_ID]

    # -- the plot -------------------------------------------------------------------------

    def live(self, tk: _Ticket, path: str, merge_stage: str | None, master: tuple | None) -> None:
        """Play the ticket's life until it ends, reaches its showcase state, or reaches now."""
        with suppress(_Cut):
            self._plot(tk, path, merge_stage, master)
        with suppress(_Cut):
            self._background(tk, self.now)  # what the scheduler and others did since, up to now

    def _plot(self, tk: _Ticket, path: str, merge_stage: str | None, master: tuple | None) -> None:
        rng, days = self.rng, self.days
        if tk.stop_at == "registered":
            return
        t = tk.created
        if path == "cancel":
            self.cancel(tk, t + rng.randint(300, 4 * 3600))
            return
        if path == "answer":
            self.answer(tk, t + rng.randint(60, 900), self._answer_text(tk))
            self._callbacks(tk)
            return
        if merge_stage == "registered":
            self.merge(tk, t + rng.randint(600, 4 * 3600), master)
            return
        if tk.urgency != "normal":
            t += rng.randint(60, 600)
        elif rng.random() < 0.7:
            t += rng.randint(120, 2400)
        else:
            t = days.office(t + 600)
        code, routed_by = self.d.routes[tk.leaf][tk.place]
        co = self._co_department(tk, code) if rng.random() < 0.06 else None
        self.dispatch(tk, t, self.centre(0.15), code, routed_by, co)
        if merge_stage == "dispatched" and self._merge_if_open(tk, tk.last + rng.randint(1200, 6 * 3600), master):
            return
        self._returns(tk)
        if tk.state == "dispatched":
            self.sign(tk, self._sign_time(tk))
        if merge_stage == "in_progress" and self._merge_if_open(tk, tk.last + rng.randint(1200, 6 * 3600), master):
            return
        self._handle(tk)
        self._callbacks(tk)

    def _merge_if_open(self, tk: _Ticket, t: int, master: tuple) -> bool:
        """Merge into the master if it is still open then (the guard valid_master)."""
        if t >= master[2]:
            return False
        self.merge(tk, t, master)
        return True

    def _between(self, lo: int, hi: int, low: float, high: float) -> int:
        """A moment part-way from lo to hi, moved into office hours when that still fits."""
        t = lo + int((hi - lo) * self.rng.uniform(low, high))
        moved = self.days.office(t)
        return moved if moved < hi else t

    def _returns(self, tk: _Ticket) -> None:
        """Returns (退单) within the return window; the centre rejects them or redispatches."""
        rng, days = self.rng, self.days
        showcase = tk.stop_at is not None
        for n in range(2):
            wanted = tk.stop_at == "returned" and n == 0
            if tk.designated or not wanted and (showcase or rng.random() >= (0.07 if n == 0 else 0.15)):
                return
            window_end = days.due(tk.dispatched_at, self.return_window)[0]
            if not showcase and tk.state == "dispatched" and rng.random() < 0.3:
                self.sign(tk, days.office(tk.last + rng.randint(600, 3 * 3600)))
            t = days.office(tk.last + rng.randint(900, 4 * 3600))
            if t > window_end:
                return
            reason = rng.choice(RETURN_REASONS)
            self.return_(tk, t, reason)
            t = days.office(tk.last + rng.randint(1800, 6 * 3600))
            if rng.random() < 0.3:
                self.reject_return(tk, t)
                return
            new = self._redispatch_target(tk)
            text = REDISPATCH.format(dept=self.d.departments[new][2])
            self.dispatch(tk, t, self.supervisor(), new, "given", redispatch_reason=text)

    def _sign_time(self, tk: _Ticket) -> int:
        rng = self.rng
        if tk.limits[0].working_days is None:  # urgent: minutes, natural time
            return tk.last + rng.randint(180, 1500)
        if tk.stop_at is None and rng.random() < 0.06:  # signed late
            return self.days.on_workday(self.days.index(_day_of(tk.sign_by) + 1) + rng.randint(0, 2))
        return self.days.office(tk.last + 300 + int(rng.expovariate(1 / 5400)))

    def _handle(self, tk: _Ticket) -> None:
        """From signing (or rehandling) to the approved reply."""
        rng, days = self.rng, self.days
        showcase = tk.stop_at is not None
        natural = tk.limits[2]
        t0 = tk.last
        late = not showcase and rng.random() < 0.08
        if showcase:
            reply_at = days.office(t0 + rng.randint(2 * 3600, 20 * 3600))
        elif natural:
            reply_at = (
                max(tk.handle_by, t0) + rng.randint(3600, 30 * 3600) if late else t0 + rng.randint(2 * 3600, 20 * 3600)
            )
        else:
            first, deadline = days.index(_day_of(t0)), days.index(_day_of(tk.handle_by))
            if late:
                index = deadline + rng.randint(1, 4)
            elif rng.random() < 0.004:  # stuck for weeks
                index = deadline + rng.randint(10, 40)
            else:
                index = first + int((deadline - first + 1) * rng.random() ** 1.6)
            reply_at = days.on_workday(max(index, first))
        if reply_at < t0 + 1200:
            reply_at = t0 + rng.randint(1200, 4 * 3600)

        if not natural and not showcase and rng.random() < 0.05 and tk.extension_total < self.extension_cap:
            limit = min(tk.handle_by, reply_at)
            if limit - tk.last > 4 * 3600:
                asked = min(rng.choice((3, 5, 5, 7, 10)), self.extension_cap - tk.extension_total)
                reason = rng.choice(EXTENSION_REASONS)
                self.request_extension(tk, self._between(tk.last, limit, 0.3, 0.8), asked, reason)
                self.decide_extension(tk, self._between(tk.last, reply_at, 0.05, 0.3), rng.random() < 0.8)

        if tk.stop_at == "suspended" or not showcase and rng.random() < 0.02:
            reason = rng.choice(SUSPENSION_REASONS)
            if showcase:
                self.request_suspension(tk, days.office(tk.last + rng.randint(1800, 3 * 3600)), reason)
                self.decide_suspension(tk, days.office(tk.last + rng.randint(3600, 4 * 3600)), True)
            else:
                self.request_suspension(tk, self._between(tk.last, reply_at, 0.1, 0.4), reason)
                approve = rng.random() < 0.85
                self.decide_suspension(tk, self._between(tk.last, reply_at, 0.1, 0.3), approve)
                if approve:
                    remaining = max(reply_at - tk.last, 1800)
                    self.resume(tk, days.office(tk.last + rng.randint(3, 25) * _DAY))
                    reply_at = tk.last + remaining

        co = tk.active("co")
        if co is not None and co[A_STATUS] != "replied":
            if co[A_STATUS] == "dispatched":
                self.sign(tk, self._between(tk.last, reply_at, 0.05, 0.3), co=True)
            self.reply(tk, self._between(tk.last, reply_at, 0.2, 0.8), self._result_text(tk, co[A_DEPT]), co=True)
        self.reply(tk, reply_at, self._result_text(tk, tk.main))

        t = days.office(tk.last + rng.randint(1800, 20 * 3600))
        if not showcase and rng.random() < 0.08:
            self.reject_reply(tk, t)
            self.reply(tk, days.office(tk.last + rng.randint(2 * 3600, 2 * _DAY)), "补充答复：" + tk.result)
            t = days.office(tk.last + rng.randint(1800, 20 * 3600))
        self.approve_reply(tk, t)

    def _callbacks(self, tk: _Ticket) -> None:
        """Callbacks (回访) until the ticket closes or goes back for rehandling; the scheduler
        sends the rating link, and closes the ticket when nobody reached the citizen."""
        rng, days = self.rng, self.days
        if not tk.reply_wanted:
            self.close(tk, days.office(tk.last + rng.randint(600, 4 * 3600)), self.agent())
            return
        while True:
            if tk.last_reached is None and rng.random() < 0.05:
                return  # nobody calls back: the scheduler closes it when the window has passed
            invitation = tk.open_invitation()
            citizen = invitation is not None and rng.random() < 0.12
            if citizen:
                t = max(tk.last, invitation[I_CREATED]) + rng.randint(600, _DAY)
                citizen = t <= invitation[I_EXPIRES]
            if citizen:
                actor, reached = CITIZEN, True
            else:
                actor, reached = self.agent(), rng.random() < 0.8
                t = days.office(tk.last + rng.randint(1800, (12 if tk.callbacks else 24) * 3600))
            if not reached:
                self.callback(tk, t, actor, None, None)
                if tk.unreached < self.attempts:
                    continue
                if tk.last_reached is None:
                    return  # the attempts ran out: the scheduler closes it as not called back
                self.close(tk, days.office(tk.last + rng.randint(600, 4 * 3600)), self.centre(0.5), DISSATISFIED_CLOSE)
                return
            rating = rng.choices(RATINGS, RATING_WEIGHTS)[0]
            solved = rating >= 4 or (rating == 3 and rng.random() < 0.7)
            self.callback(tk, t, actor, rating, solved)
            if rating in self.satisfied and solved:
                self.close(tk, tk.last + rng.randint(30, 900), self.agent())
                return
            # A dissatisfied rating by link, or after the agents' rehandlings, is the supervisor's.
            supervisor_only = citizen or tk.rehandles >= self.agent_rehandles
            if tk.main is not None and tk.rehandles < 2 and rng.random() < 0.55:
                actor = self.supervisor() if supervisor_only else self.centre(0.4)
                self.rehandle(tk, days.office(tk.last + rng.randint(300, 4 * 3600)), actor)
                self._handle(tk)
                continue
            actor = self.supervisor() if supervisor_only else self.centre(0.5)
            self.close(tk, days.office(tk.last + rng.randint(600, 2 * _DAY)), actor, DISSATISFIED_CLOSE)
            return

    def _co_department(self, tk: _Ticket, main: str) -> str | None:
        """A co-handler (协办): the street office for a bureau, the bureau for a street office."""
        office = self.d.places[tk.place].street_code
        co = office if main != office else LEAVES[tk.leaf].department
        return co if co != main else None

    def _redispatch_target(self, tk: _Ticket) -> str:
        current = self.d.codes[tk.main]
        office = self.d.places[tk.place].street_code
        new = office if current != office else LEAVES[tk.leaf].department
        if new == current:
            new = self.rng.choice([code for code, _, _ in DEPARTMENTS if code != current])
        return new

    def _answer_text(self, tk: _Ticket) -> str:
        leaf = LEAVES[tk.leaf]
        if tk.type == "praise":
            return PRAISE_ANSWER.format(dept=self.d.departments[leaf.department][2])
        return self.rng.choice(ANSWERS).format(leaf=leaf.name)

    def _result_text(self, tk: _Ticket, dept_id: int) -> str:
        leaf = LEAVES[tk.leaf]
        if tk.type == "consultation":
            return CONSULT_RESULT.format(leaf=leaf.name)
        dept = self.d.departments[self.d.codes[dept_id]][2]
        return self.rng.choice(RESULTS).format(dept=dept, community=self.d.places[tk.place].community)


# --- who calls about what -------------------------------------------------------------------

TYPE_NAMES = [t for t, _ in TYPE_WEIGHTS]
TYPE_CUM = _cumulative(w for _, w in TYPE_WEIGHTS)
CHANNEL_NAMES = [c for c, _ in CHANNEL_WEIGHTS]
CHANNEL_CUM = _cumulative(w for _, w in CHANNEL_WEIGHTS)


class _Callers:
    """The intake side of tickets: type, category, place, caller, words."""

    def __init__(self, rng: random.Random, d: _Directory) -> None:
        self.rng = rng
        self.d = d
        # Some communities call more than others.
        self.place_cum = _cumulative(rng.uniform(0.4, 2.0) for _ in d.places)
        self.leaf_tables: dict[tuple[int, bool], tuple[list[int], list[float]]] = {}
        # A few people call again and again (重复来电).
        self.frequent = [(self._name(), self._phone()) for _ in range(200)]

    def _name(self) -> str:
        rng = self.rng
        surname = rng.choice(SURNAMES)
        if rng.random() < 0.45:
            return surname + rng.choice(("先生", "女士"))
        return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))

    def _phone(self) -> str:
        return f"{self.rng.choice(PHONE_PREFIXES)}{self.rng.randrange(10**9):09d}"

    def leaves_for(self, season: int, consultation: bool) -> tuple[list[int], list[float]]:
        """Leaves and cumulative weights in a season: 0 plain, 1 summer, 2 heating starts, 3 heating."""
        key = (season, consultation)
        table = self.leaf_tables.get(key)
        if table is None:
            index, weights = [], []
            for i, leaf in enumerate(LEAVES):
                weight = leaf.question_weight if consultation else leaf.problem_weight
                if not weight or not (leaf.questions if consultation else leaf.problems):
                    continue
                if "summer" in leaf.flags and season == 1:
                    weight *= 1.8
                if "heating" in leaf.flags:
                    weight *= (0.05, 0.05, 0.8, 3.0)[season]
                index.append(i)
                weights.append(weight)
            table = self.leaf_tables[key] = (index, _cumulative(weights))
        return table

    def pick(self, season: int, master: tuple | None) -> dict[str, Any]:
        """A new caller's request, or a repeat of the master's (a duplicate, merged later)."""
        rng, d = self.rng, self.d
        if master is not None:
            ticket_type, leaf_i, place_i, issue, address, lat, lng, urgency = master[3:11]
        else:
            ticket_type = rng.choices(TYPE_NAMES, cum_weights=TYPE_CUM)[0]
            index, cum = self.leaves_for(season, ticket_type == "consultation")
            leaf_i = rng.choices(index, cum_weights=cum)[0]
            leaf = LEAVES[leaf_i]
            issue = rng.randrange(len(leaf.questions if ticket_type == "consultation" else leaf.problems))
            place_i = rng.choices(range(len(d.places)), cum_weights=self.place_cum)[0]
            place = d.places[place_i]
            if rng.random() < 0.5:
                address = f"{rng.choice(place.roads)}{rng.randint(1, 399)}号"
            else:
                address = f"{rng.choice(place.estates)}{rng.randint(1, 32)}栋{rng.randint(1, 4)}单元"
            lat = round(place.lat + rng.gauss(0, 0.003), 6)
            lng = round(place.lng + rng.gauss(0, 0.003), 6)
            urgency = self._urgency(leaf)
        leaf, place = LEAVES[leaf_i], d.places[place_i]
        name, phone = rng.choice(self.frequent) if rng.random() < 0.03 else (self._name(), self._phone())
        anonymous = rng.random() < (0.1 if ticket_type == "report" else 0.03)
        confidential = rng.random() < (0.3 if ticket_type == "report" else 0.03)
        reply_wanted = not (anonymous and rng.random() < 0.5) and rng.random() > 0.03
        caller = "匿名市民" if anonymous else f"市民{name}"
        title, content = self._words(ticket_type, leaf, issue, place, address, caller)
        return {
            "type": ticket_type, "leaf": leaf_i, "place": place_i, "issue": issue, "address": address,
            "lat": lat, "lng": lng, "urgency": urgency,
            "channel": rng.choices(CHANNEL_NAMES, cum_weights=CHANNEL_CUM)[0],
            "caller_name": None if anonymous else name, "caller_phone": phone, "anonymous": anonymous,
            "confidential": confidential, "reply_wanted": reply_wanted, "title": title, "content": content,
        }  # fmt: skip

    def _urgency(self, leaf: Leaf) -> str:
        r = self.rng.random()
        if "danger" in leaf.flags:
            return "critical" if r < 0.2 else "urgent" if r < 0.3 else "normal"
        if "outage" in leaf.flags:
            return "urgent" if r < 0.25 else "normal"
        return "urgent" if r < 0.01 else "critical" if r < 0.013 else "normal"

    def _words(self, ticket_type: str, leaf: Leaf, issue: int, place: _Place, address: str, caller: str):
        """Title and content, from the category's phrases."""
        where = f"{place.street}{place.community}"
        if ticket_type == "consultation":
            title, detail = leaf.questions[issue]
            return title, CONTENT["consultation"].format(caller=caller, detail=detail, place=where)
        title, detail = leaf.problems[issue]
        if ticket_type == "suggestion":
            content = CONTENT["suggestion"].format(caller=caller, place=where, title=title)
            return f"关于加强{leaf.name}管理的建议", content
        if ticket_type == "praise":
            dept = self.d.departments[leaf.department][2]
            content = CONTENT["praise"].format(caller=caller, place=where, title=title, dept=dept)
            return f"表扬{dept}工作人员", content
        content = CONTENT[ticket_type].format(caller=caller, place=where + address, detail=detail)
        return f"{place.community}{title}", content


def _season(day: int) -> int:
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    if d.month in (12, 1, 2, 3) or d.month == 11 and d.day >= 15:
        return 3
    if d.month == 11 or d.month == 10 and d.day >= 15:
        return 2
    return 1 if d.month in (6, 7, 8) else 0


# --- writing --------------------------------------------------------------------------------

# The columns each row tuple fills, in order; the others get the table's default.
_COLUMNS = {
    "tickets": (
        "id", "number", "external_id", "workflow", "type", "category_id", "urgency", "channel", "caller_name",
        "caller_phone", "confidential", "anonymous", "reply_wanted", "title", "content", "street", "community",
        "address", "lat", "lng", "state", "version", "main_department_id", "dispatch_count", "designated",
        "return_from_state", "master_id", "rehandle_count", "answer", "result", "close_reason", "created_by_id",
        "created_at", "updated_at", "dispatched_at", "signed_at", "replied_at", "closed_at", "sign_by", "handle_by",
        "callback_by", "deadlines_provisional", "handle_started_at", "callback_started_at", "extension_days",
        "suspended_seconds", "suspended_at", "due_at", "due_kind", "warn_at", "escalation_step", "next_due_at",
        "invitation_sent_at", "callbacks_exhausted_at",
    ),
    "ticket_events": (
        "id", "ticket_id", "event", "actor_id", "actor_name", "actor_role", "from_state", "to_state", "at", "details",
    ),
    "assignments": (
        "id", "ticket_id", "department_id", "role", "status", "dispatched_at", "signed_at", "signed_by_id",
        "replied_at", "replied_by_id", "result", "sign_by", "signed_on_time", "returned", "handle_by",
        "first_replied_at", "replied_on_time", "rehandles",
    ),
    "approvals": (
        "id", "ticket_id", "kind", "status", "department_id", "requested_by_id", "requested_at", "reason",
        "reason_code", "basis", "days", "from_state", "decided_by_id", "decided_at", "decision_reason",
    ),
    "callbacks": (
        "id", "ticket_id", "attempt", "reached", "solved", "rating", "comment", "source", "by_id", "at",
        "department_id",
    ),
    "escalations": ("id", "ticket_id", "department_id", "deadline_kind", "deadline_at", "step", "at", "by_scheduler"),
    "supervision_orders": (
        "id", "ticket_id", "department_id", "issued_at", "issued_by_id", "message", "status", "answered_at",
        "answered_by_id", "answer",
    ),
    "notifications": (
        "id", "user_id", "department_id", "role", "kind", "ticket_id", "title", "body", "created_at",
    ),
    "messages": ("id", "channel", "to", "body", "ticket_id", "created_at", "status"),
    "rating_invitations": (
        "id", "ticket_id", "token_hash", "created_at", "expires_at", "used_at", "revoked_at", "sent_by_id",
        "message_id",
    ),
    "rectifications": (
        "id", "ticket_id", "callback_id", "department_id", "status", "opened_at", "due_at", "provisional",
        "verification", "measures", "reported_at", "reported_by_id", "decided_at", "decided_by_id", "next_due_at",
    ),
}  # fmt: skip
_TABLES = {
    table.name: table
    for table in (Ticket.__table__, TicketEvent.__table__, Assignment.__table__, Approval.__table__,
                  Callback.__table__, Escalation.__table__, SupervisionOrder.__table__, Notification.__table__,
                  Message.__table__, RatingInvitation.__table__, Rectification.__table__)
}  # fmt: skip
_NAIVE_EPOCH = datetime(1970, 1, 1)


class _Writer:
    """Bulk inserts over one connection, one transaction a batch.

    The rows are plain tuples handed to the driver's executemany, their values already in
    the form SQLAlchemy would bind: on SQLite the UTC text that hotline.db.UTCDateTime
    stores, on PostgreSQL aware datetimes; JSON as json.dumps writes it.
    """

    def __init__(self, runtime) -> None:
        self.db = runtime.db
        self.sqlite = self.db.is_sqlite
        self.conn = self.db.engine.connect()
        self.written = dict.fromkeys(_TABLES, 0)
        self.sql: dict[str, str] = {}
        self.tail: dict[str, tuple] = {}
        self.keep: dict[str, list[int] | None] = {}
        quote = self.conn.dialect.identifier_preparer.quote
        inspector = inspect(self.conn)
        for name, table in _TABLES.items():
            # The database's columns decide: what it lacks is left out, what the demo does not
            # fill gets the model's default.
            present = {c["name"]: c for c in inspector.get_columns(name)}
            columns = _COLUMNS[name]
            keep = [i for i, c in enumerate(columns) if c in present]
            self.keep[name] = None if len(keep) == len(columns) else keep
            rest = [c for c in present if c not in columns]
            self.tail[name] = tuple(self._default(table, c, present[c]["nullable"]) for c in rest)
            names = [columns[i] for i in keep] + rest
            marks = ", ".join(self._mark(table, n) for n in names)
            self.sql[name] = f"INSERT INTO {quote(name)} ({', '.join(map(quote, names))}) VALUES ({marks})"
        self.conn.commit()
        if self.sqlite:
            # A larger page cache for the ticket indexes while loading (this connection only).
            self.conn.exec_driver_sql("PRAGMA cache_size=-262144")
            self.conn.commit()
            self._dates: dict[int, str] = {}
            self._times = [f"{h:02d}:{m:02d}:{x:02d}.000000" for h in range(24) for m in range(60) for x in range(60)]

    def _mark(self, table, name: str) -> str:
        if self.sqlite:
            return "?"
        return "%s::json" if name in table.c and isinstance(table.c[name].type, JSON) else "%s"

    @staticmethod
    def _default(table, name: str, nullable: bool) -> Any:
        default = table.c[name].default if name in table.c else None
        if default is not None and default.is_scalar:
            return default.arg
        if default is None and nullable:
            return None
        raise RuntimeError(f"hotline.demo is out of date: it does not fill {table.name}.{name}")

    def dt(self, ts: int | None) -> Any:
        """A time in epoch seconds, as the column binds it."""
        if ts is None:
            return None
        if not self.sqlite:
            return _EPOCH + timedelta(seconds=ts)
        # "YYYY-MM-DD HH:MM:SS.ffffff" in UTC, from cached days and times of day (hot path).
        day, second = divmod(ts, _DAY)
        text = self._dates.get(day)
        if text is None:
            text = self._dates[day] = (_NAIVE_EPOCH + timedelta(days=day)).strftime("%Y-%m-%d ")
        return text + self._times[second]

    def dt_us(self, us: int | None) -> Any:
        """A time in epoch microseconds, as the column binds it."""
        if us is None:
            return None
        if self.sqlite:
            return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat(" ", "microseconds")
        return _EPOCH + timedelta(microseconds=us)

    def start(self) -> tuple[dict[str, int], dict[str, int]]:
        """The highest id of each table and the ticket counters, to continue after them."""
        with self.conn.begin():
            ids = {
                name: self.conn.execute(select(func.max(table.c.id))).scalar() or 0 for name, table in _TABLES.items()
            }
            counters = dict(self.conn.execute(select(TicketCounter.day, TicketCounter.value)).all())
        return ids, counters

    def write(self, batch: "_Batch") -> None:
        with self.conn.begin():
            for name, rows in batch.rows.items():
                if rows:
                    keep, tail = self.keep[name], self.tail[name]
                    if keep is not None:
                        rows = [tuple(row[i] for i in keep) for row in rows]
                    self.conn.exec_driver_sql(self.sql[name], [row + tail for row in rows] if tail else rows)
                    self.written[name] += len(rows)
            if batch.counters:
                table = TicketCounter.__table__
                insert = sqlite_insert(table) if self.sqlite else pg_insert(table)
                upsert = insert.on_conflict_do_update(index_elements=["day"], set_={"value": insert.excluded.value})
                self.conn.execute(upsert, [{"day": day, "value": value} for day, value in batch.counters.items()])

    def close(self) -> None:
        try:
            if not self.sqlite:
                # The ids were given here: move each sequence past them.
                with self.conn.begin():
                    for name in _TABLES:
                        self.conn.exec_driver_sql(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), MAX(id)) FROM {name} "
                            "HAVING MAX(id) IS NOT NULL"
                        )
            else:
                self.conn.exec_driver_sql("PRAGMA cache_size=-2000")
                self.conn.commit()
        finally:
            self.conn.close()


class _Pipe:
    """Writes batches in a thread of its own: the database works (SQLite and psycopg let go
    of the GIL meanwhile) while the next batch is played."""

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.queue: Queue = Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = Thread(target=self._run, name="demo-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write(batch)
                except BaseException as exc:  # handed to the loader, which raises it
                    self.error = exc

    def put(self, batch: "_Batch") -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(batch)

    def close(self) -> None:
        """Wait for the last batch; raise what the writer raised."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


class _Batch:
    """Rows waiting to be written, as tuples in the order of _COLUMNS."""

    def __init__(self, writer: _Writer, ids: dict[str, int]) -> None:
        self.rows: dict[str, list[tuple]] = {name: [] for name in _TABLES}
        self.counters: dict[str, int] = {}
        self.dt, self.dt_us = writer.dt, writer.dt_us
        self.ids = ids  # the running ids of the rows numbered only here

    def __len__(self) -> int:
        return len(self.rows["tickets"])

    def add(self, tk: _Ticket, req: dict[str, Any], creator: Actor, d: _Directory) -> None:
        dt, ids, rows = self.dt, self.ids, self.rows
        place = d.places[tk.place]
        channel = req["channel"]
        external_id = f"JZ{tk.number}" if channel == "city" else f"API-{tk.number}" if channel == "api" else None
        rows["tickets"].append((
            tk.id, tk.number, external_id, WORKFLOW, tk.type, d.leaf_ids[tk.leaf], tk.urgency, channel,
            req["caller_name"], req["caller_phone"], req["confidential"], req["anonymous"], tk.reply_wanted,
            req["title"], req["content"], place.street, place.community, req["address"], req["lat"], req["lng"],
            tk.state, tk.version, tk.main, tk.dispatch_count, tk.designated, tk.return_from, tk.master_id,
            tk.rehandles, tk.answer, tk.result, tk.close_reason, creator[0], dt(tk.created), dt(tk.updated),
            dt(tk.dispatched_at), dt(tk.signed_at), dt(tk.replied_at), dt(tk.closed_at), dt(tk.sign_by),
            dt(tk.handle_by), dt(tk.callback_by), tk.provisional, dt(tk.handle_started), dt(tk.callback_started),
            tk.extension_days, tk.suspended_seconds, dt(tk.suspended_at), dt(tk.due_at), tk.due_kind,
            self.dt_us(tk.warn_us), tk.step, self.dt_us(tk.next_due_us), dt(tk.invitation_sent), dt(tk.exhausted_at),
        ))  # fmt: skip
        out = rows["ticket_events"]
        event_id = ids["ticket_events"]
        for event, actor, from_state, to_state, t, details in tk.events:
            event_id += 1
            out.append(
                (event_id, tk.id, event, actor[0], actor[1], actor[2], from_state, to_state, dt(t), dumps(details))
            )
        ids["ticket_events"] = event_id
        rows["assignments"] += [
            (a[A_ID], tk.id, a[A_DEPT], a[A_ROLE], a[A_STATUS], dt(a[A_DISPATCHED]), dt(a[A_SIGNED]),
             a[A_SIGNED_BY], dt(a[A_REPLIED]), a[A_REPLIED_BY], a[A_RESULT], dt(a[A_SIGN_BY]), a[A_SIGNED_ON_TIME],
             a[A_RETURNED], dt(a[A_HANDLE_BY]), dt(a[A_FIRST_REPLIED]), a[A_REPLIED_ON_TIME], a[A_REHANDLES])
            for a in tk.assignments
        ]  # fmt: skip
        rows["approvals"] += [
            (p[P_ID], tk.id, p[P_KIND], p[P_STATUS], p[P_DEPT], p[P_BY], dt(p[P_AT]), p[P_REASON], p[P_CODE],
             p[P_BASIS], p[P_DAYS], p[P_FROM], p[P_DECIDED_BY], dt(p[P_DECIDED_AT]), p[P_DECISION])
            for p in tk.approvals
        ]  # fmt: skip
        rows["callbacks"] += [
            (cb_id, tk.id, attempt, reached, solved, rating, comment, source, by_id, dt(t), dept)
            for cb_id, attempt, reached, solved, rating, comment, source, by_id, t, dept in tk.callbacks
        ]
        rows["messages"] += [
            (message_id, "stored", phone, body, tk.id, dt(t), "stored") for message_id, phone, body, t in tk.messages
        ]
        rows["rating_invitations"] += [
            (i[I_ID], tk.id, i[I_HASH], dt(i[I_CREATED]), dt(i[I_EXPIRES]), dt(i[I_USED]), dt(i[I_REVOKED]), None,
             i[I_MESSAGE])
            for i in tk.invitations
        ]  # fmt: skip
        rows["rectifications"] += [
            (r[R_ID], tk.id, r[R_CALLBACK], r[R_DEPT], r[R_STATUS], dt(r[R_OPENED]), dt(r[R_DUE]), r[R_PROVISIONAL],
             r[R_VERIFICATION], r[R_MEASURES], dt(r[R_REPORTED]), r[R_REPORTED_BY], dt(r[R_DECIDED]),
             r[R_DECIDED_BY], dt(r[R_NEXT_DUE]))
            for r in tk.rects
        ]  # fmt: skip
        out = rows["escalations"]
        for (kind, deadline, step), t in tk.escalations.items():
            ids["escalations"] += 1
            out.append((ids["escalations"], tk.id, tk.main, kind, dt(deadline), step, dt(t), True))
        rows["supervision_orders"] += [
            (o[O_ID], tk.id, o[O_DEPT], dt(o[O_ISSUED]), None, o[O_MESSAGE], o[O_STATUS], dt(o[O_ANSWERED]),
             o[O_ANSWERED_BY], o[O_ANSWER])
            for o in tk.orders
        ]  # fmt: skip
        out = rows["notifications"]
        for dept, role, kind, title, body, t in tk.notices:
            ids["notifications"] += 1
            out.append((ids["notifications"], None, dept, role, kind, tk.id, title, body, dt(t)))


# --- the loader -----------------------------------------------------------------------------


def _daily_counts(days: _Days, first: int, last: int, now: int, n: int) -> list[int]:
    """How many tickets each day gets: fewer on days off, a slow rise, today only so far."""
    weights = []
    for day in range(first, last + 1):
        w = (1.0 if days.is_working(day) else 0.62) * (0.85 + 0.3 * (day - first) / max(1, last - first))
        if day == last:
            hour, rest = divmod(now - _midnight(day), 3600)
            w *= (sum(_HOURS[:hour]) + _HOURS[hour] * rest / 3600) / sum(_HOURS)
        weights.append(w)
    total = sum(weights)
    counts, cum, given = [], 0.0, 0
    for w in weights:
        cum += w
        c = round(n * cum / total) - given
        counts.append(c)
        given += c
    return counts


_HOURS_CUM = _cumulative(_HOURS)


def _times(rng: random.Random, day: int, count: int, now: int) -> list[int]:
    """Intake moments of one day, in order; all before now."""
    start = _midnight(day)
    times = [start + h * 3600 + rng.randrange(3600) for h in rng.choices(range(24), cum_weights=_HOURS_CUM, k=count)]
    if start + _DAY >= now:
        times = [t if t < now - 60 else start + rng.randrange(max(1, now - 60 - start)) for t in times]
    times.sort()
    return times


def _showcase(counts: list[int], first: int, last: int) -> dict[int, str]:
    """The day whose last ticket ends in each showcase state."""
    chosen: dict[int, str] = {}
    for state, ago in _SHOWCASE:
        day = last - ago
        while day >= first and (counts[day - first] == 0 or day in chosen):
            day -= 1
        if day >= first:
            chosen[day] = state
    return chosen


def _pick_master(rng: random.Random, pool: deque, created: int) -> tuple | None:
    """A recent ticket still open three days on: the duplicate is merged into it."""
    for _ in range(min(6, len(pool))):
        master = pool[rng.randrange(len(pool))]
        if master[2] > created + 3 * _DAY:
            return master
    return None


def _start(rng: random.Random, life: _Life, callers: _Callers, ticket_id: int, number: str, created: int,
           season: int, stop_at: str | None, pool: deque):  # fmt: skip
    """A ticket at intake: its request, its creator, and the course its life takes."""
    path, stage, master = "dispatch", None, None
    if stop_at is None:
        r = rng.random()
        if r < 0.015:
            path = "cancel"
        elif r < 0.05:
            master = _pick_master(rng, pool, created)
            if master is not None:
                stage = "registered" if rng.random() < 0.6 else rng.choice(("dispatched", "dispatched", "in_progress"))
    elif stop_at == "cancelled":
        path = "cancel"
    elif stop_at == "pending_callback":
        path = "answer"
    elif stop_at == "merged":
        master = _pick_master(rng, pool, created)
        stage = "registered" if master is not None else None
    req = callers.pick(season, master)
    answer_share = ANSWER_SHARE.get(req["type"], 0.0)
    if path == "dispatch" and master is None and stop_at is None and rng.random() < answer_share:
        path = "answer"
    tk = _Ticket(ticket_id, number, created)
    tk.type, tk.urgency, tk.leaf, tk.place = req["type"], req["urgency"], req["leaf"], req["place"]
    tk.reply_wanted, tk.phone = req["reply_wanted"], req["caller_phone"]
    tk.limits = life.limits(tk.type, tk.urgency)
    tk.stop_at = stop_at
    creator = life.agent()
    details = {"channel": req["channel"], "workflow": WORKFLOW}
    tk.events.append(("create", creator, None, "registered", created, details))
    return tk, req, creator, path, stage, master


def _load_tickets(runtime, d: _Directory, wf: Workflow, cal: WorkCalendar, link_key: bytes, rng: random.Random,
                  now: datetime, n: int, out: TextIO, started: float) -> tuple[Counter, dict[str, int]]:  # fmt: skip
    """Play and write the tickets; return the final states counted and the rows written."""
    now_ts = int(now.timestamp())
    last = _day_of(now_ts)
    first = last - _HISTORY_DAYS + 1
    days = _Days(cal, first - 7, last + 400, rng)
    life = _Life(rng, wf, days, d, now_ts, runtime.settings, link_key)
    callers = _Callers(rng, d)
    states: Counter = Counter()
    writer = _Writer(runtime)
    pipe = None
    try:
        ids, counters = writer.start()
        pipe = _Pipe(writer)
        ticket_id = ids.pop("tickets")
        life.ids.update({name: ids[name] for name in life.ids})
        counts = _daily_counts(days, first, last, now_ts, n)
        showcase = _showcase(counts, first, last)
        pool: deque = deque(maxlen=64)
        batch = _Batch(writer, ids)
        done = 0
        for day in range(first, last + 1):
            count = counts[day - first]
            if count <= 0:
                continue
            stamp = date.fromordinal(day + _EPOCH_ORDINAL).strftime("%Y%m%d")
            base = counters.get(stamp, 0)
            season = _season(day)
            for i, created in enumerate(_times(rng, day, count, now_ts)):
                ticket_id += 1
                number = f"{stamp}{base + i + 1:06d}"
                stop_at = showcase.get(day) if i == count - 1 else None
                tk, req, creator, path, stage, master = _start(
                    rng, life, callers, ticket_id, number, created, season, stop_at, pool
                )
                life.live(tk, path, stage, master)
                batch.add(tk, req, creator, d)
                batch.counters[stamp] = base + i + 1
                states[tk.state] += 1
                if tk.main is not None and tk.state not in ("merged", "cancelled"):
                    closed = tk.closed_at or _NEVER
                    pool.append((tk.id, tk.number, closed, tk.type, tk.leaf, tk.place, req["issue"],
                                 req["address"], req["lat"], req["lng"], tk.urgency))  # fmt: skip
                if len(batch) >= _BATCH:
                    pipe.put(batch)
                    batch = _Batch(writer, ids)
                done += 1
                if done % _PROGRESS_EVERY == 0:
                    out.write(f"  {done:,} tickets ({time.monotonic() - started:.0f} s)\n")
                    out.flush()
        pipe.put(batch)
        pipe.close()
        pipe = None
    finally:
        if pipe is not None:
            with suppress(BaseException):
                pipe.close()
        writer.close()
    return states, writer.written


def _refuse_if_loaded(session: Session) -> None:
    taken = session.execute(select(Department.code).where(Department.code.in_(demo_codes()))).scalar()
    if taken is not None:
        raise Conflict(
            f"the demo district is loaded already (department {taken!r} exists); load the demo into an empty database"
        )
    names = ["admin", "agent1", "agent2", "supervisor1", "supervisor2"]
    user = session.execute(select(User.username).where(User.username.in_(names))).scalar()
    if user is not None:
        raise Conflict(f"the user {user!r} exists already; load the demo into an empty database")


def load_demo(runtime, *, tickets: int, seed: int = 12345, out: TextIO) -> None:
    """Load the demo district and `tickets` tickets over the six months before runtime.now().

    Refuses (Conflict) when the demo district is there already: the demo is for an empty
    database. The same seed and the same now give the same data; the API tokens printed
    are new each time.
    """
    started = time.monotonic()
    if tickets < 0:
        raise Invalid("the number of tickets cannot be negative", field="tickets")
    rng = random.Random(seed)
    wf = runtime.workflows.get(WORKFLOW)
    now = runtime.now()
    with runtime.db.session() as session:
        _refuse_if_loaded(session)
        d = _build_directory(session, runtime, now, rng)
        cal = runtime.calendar(session)
        link_key = app_secret(session, "rating_link", now)
    out.write(
        f"demo district {CITY}{DISTRICT}: {len(d.departments)} departments, {len(STREETS)} streets, "
        f"{len(d.places)} communities, {len(CATEGORY_NODES)} categories ({len(LEAVES)} leaves), "
        f"{d.rules} routing rules\n"
        f"demo users, all with the password {DEMO_PASSWORD!r}:\n"
        "  admin (admin); agent1, agent2 (agent); supervisor1, supervisor2 (supervisor);\n"
        "  <code>.handler (handler) and <code>.leader (leader) for each department:\n"
    )
    for code, (_, name, _) in d.departments.items():
        out.write(f"    {code:<6} {name}\n")
    local_now = now.astimezone(LOCAL_TZ)
    out.write(f"tickets: {tickets:,} over the {_HISTORY_DAYS} days to {local_now:%Y-%m-%d %H:%M} (seed {seed})\n")
    out.flush()
    states, written = _load_tickets(runtime, d, wf, cal, link_key, rng, now, tickets, out, started)
    out.write(
        f"wrote {written['tickets']:,} tickets, {written['ticket_events']:,} history rows, "
        f"{written['assignments']:,} assignments, {written['approvals']:,} approvals, "
        f"{written['callbacks']:,} callbacks, {written['escalations']:,} escalations, "
        f"{written['supervision_orders']:,} supervision orders, {written['notifications']:,} notices, "
        f"{written['rating_invitations']:,} rating links, {written['rectifications']:,} rectifications\n"
        "states: " + ", ".join(f"{s} {states[s]:,}" for s in wf.states) + "\n"
    )
    with runtime.db.session() as session:  # the rows were written in bulk, past the gateway
        rows = totals.rebuild(session)
    out.write(f"running totals: {rows:,} rows\n")
    runtime.db.refresh_statistics()  # the planner's view of the new rows
    with runtime.db.session() as session:
        tokens = [(username, directory.issue_token(session, username, now=now)) for username in TOKEN_USERS]
    out.write("API tokens (shown once; send 'Authorization: Bearer TOKEN'):\n")
    for username, token in tokens:
        out.write(f"token {username}: {token}\n")
    out.write(f"done in {time.monotonic() - started:.1f} s\n")
    out.flush()
